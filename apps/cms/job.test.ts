// The Count-Min sketch job through real nodes (capabilities, receipts, push bounds) and the task
// loop: tasks only push, every item is estimated at or above its exact count and within ε·N for
// at least 1 − δ of them, and a point query reads the item's counters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inProcessJob } from '../../server/jobs/testkit.ts';
import { TabshardError } from '../../shared/errors.ts';
import { jobApp } from '../jobs.ts';

describe('Count-Min sketch job', () => {
  let job: Awaited<ReturnType<typeof inProcessJob>>;
  before(async () => {
    job = await inProcessJob({ seed: 11, shards: 4, config: { tau: 0 }, app: 'cms' });
  });
  after(() => job?.close());

  it('counts the corpus with two workers that read nothing; every estimate at or above the truth', async () => {
    const totals = await Promise.all([job.run(), job.run()]);
    assert.equal(
      totals.reduce((n, t) => n + t.tasks, 0),
      4,
    );
    assert.equal(
      totals.reduce((n, t) => n + t.pulledValues, 0),
      0,
      'push-only tasks pull nothing',
    );
    const { driver } = job;
    await driver.settle();
    const meta = driver.app.meta as { inserts: number; under: number; sketch: { delta: number } };
    assert.equal(
      totals.reduce((n, t) => n + t.examples, 0),
      meta.inserts,
      'every token counted once',
    );
    assert.equal(meta.under, 0, 'no estimate below its exact count');
    const [m] = driver.metrics;
    assert.ok(m.accuracy >= 1 - meta.sketch.delta, `within ε·N: ${m.accuracy}`);
    assert.ok(m.logLoss > 0 && m.logLoss < 1, `mean overestimate ${m.logLoss} ε·N`);
    assert.ok(driver.reached);
    assert.deepEqual(await driver.auditTasks(), { tasks: 4, missing: 0, once: 4, more: 0 });
  });

  it('answers point queries from the counters, and refuses a malformed one', async () => {
    const q = (await job.driver.query({ item: 'The' })) as Record<string, number | string>;
    assert.equal(q.item, 'the');
    assert.ok((q.exactPerPass as number) > 10_000, `"the" occurs ${q.exactPerPass} times`);
    assert.ok((q.estimate as number) >= (q.exactPerPass as number));
    assert.ok((q.estimate as number) - (q.exactPerPass as number) <= (q.boundPerPass as number));
    const none = (await job.driver.query({ item: 'zzqqxxunseen' })) as Record<string, number>;
    assert.equal(none.exactPerPass, 0);
    const bads: Array<Record<string, string>> = [{}, { item: '' }, { item: 'x'.repeat(201) }];
    for (const bad of bads)
      await assert.rejects(
        job.driver.query(bad),
        (err) => err instanceof TabshardError && err.code === 'TS_ERR_INVALID_ARGUMENT',
      );
  });

  it('refuses options it cannot use before preparing anything', () => {
    const app = jobApp('cms');
    assert.throws(() => app.check({ data: 'ctr' }), /data must be spam/);
    assert.throws(() => app.check({ examples: 10 }), /--examples does not apply/);
    assert.throws(() => app.check({ model: { depth: 40 } }), /depth must be in \[1, 16\]/);
    assert.throws(() => app.check({ model: { hidden: 4 } }), /no model setting hidden/);
    app.check({ model: { depth: 2, width: 1000 } });
  });
});
