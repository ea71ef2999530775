// The LDA job through real nodes (capabilities over three tables, receipts, at-most-once) and
// the task loop: after the run the servers' tables hold exactly the counts of the assignments
// they hold — every token assigned once, each word's counts its occurrences, the totals the
// corpus's tokens — and the held-out log-perplexity went down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inProcessJob } from '../../server/jobs/testkit.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { jobApp } from '../jobs.ts';
import { shardTokens } from './model.ts';

describe('LDA job', () => {
  let job: Awaited<ReturnType<typeof inProcessJob>>;
  before(async () => {
    job = await inProcessJob({ seed: 12, shards: 4, config: { tau: 0, iterations: 3 }, app: 'lda' });
  });
  after(() => job?.close());

  it('samples with two stateless workers; the tables stay the counts of the assignments', async () => {
    const totals = await Promise.all([job.run(), job.run()]);
    assert.equal(
      totals.reduce((n, t) => n + t.tasks, 0),
      12,
    );
    const { driver, manager } = job;
    await driver.settle();
    assert.deepEqual(await driver.auditTasks(), { tasks: 12, missing: 0, once: 12, more: 0 });
    const K = driver.app.model!.topics;
    const stride = driver.app.model!.stride;
    const [wordTopic, topics, assignments] = driver.app.tables;
    const shards = driver.app.shards.map((b) => decodeShard(b));
    let all = 0;
    for (const s of shards) {
      const n = shardTokens(s);
      all += n;
      const z = await manager.pull(1, assignments.id, { begin: s.index * stride, end: s.index * stride + n });
      assert.ok(
        z.every((v) => Number.isInteger(v) && v >= 1 && v <= K),
        'every token holds one topic',
      );
    }
    const t = await manager.pull(1, topics.id, { begin: 0, end: K });
    assert.equal(
      t.reduce((a, b) => a + b, 0),
      all,
    );
    // Each word's counts add up to its occurrences (shard 0's words, over all shards).
    const words = shards[0].keys;
    const wt = await manager.pull(1, wordTopic.id, words);
    const occurrences = new Map<number, number>();
    for (const s of shards)
      for (let i = 0; i < s.col.length; i++)
        occurrences.set(s.keys[s.col[i]], (occurrences.get(s.keys[s.col[i]]) ?? 0) + s.val[i]);
    words.forEach((w, i) => {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        assert.ok(wt[i * K + k] >= 0);
        sum += wt[i * K + k];
      }
      assert.equal(sum, occurrences.get(w), `word ${w}`);
    });
    // The console's insight: each topic's most relevant words, as the corpus spells them.
    const insight = driver.status().insight!;
    assert.equal(insight.rows.length, K);
    for (const [topic, words] of insight.rows) {
      assert.match(topic, /^topic \d+$/);
      assert.equal(words.split(' ').length, 8);
      assert.ok(!words.includes('?'), words);
    }
    const m = driver.metrics.map((x) => x.logLoss);
    assert.equal(m.length, 3);
    assert.ok(m[2] < m[0], `held-out log-perplexity ${m.join(' → ')}`);
  });

  it('refuses options it cannot use before preparing anything', () => {
    const app = jobApp('lda');
    assert.throws(() => app.check({ data: 'ctr' }), /data must be spam/);
    assert.throws(() => app.check({ model: { topics: 1 } }), /topics must be in \[2, 256\]/);
    assert.throws(() => app.check({ model: { dim: 4 } }), /no model setting dim/);
    app.check({ model: { topics: 20, alpha: 0.1 } });
  });
});
