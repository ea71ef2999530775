// The application registries (workers.ts, jobs.ts): what they refuse, and that an application
// registered from outside — here a word count, both halves written in this file — runs through
// the real driver, scheduler, nodes (capabilities, receipts, at-most-once) and task loop, which
// know it only through the contract.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prepareSpamData } from '../server/data/spam-data.ts';
import { inProcessJob } from '../server/jobs/testkit.ts';
import { type DecodedShard, decodeShard } from '../shared/apps/shard.ts';
import { TabshardError } from '../shared/errors.ts';
import type { TableSpec } from '../shared/table.ts';
import { jobApp, jobAppNames, listJobApps, type PreparedJob, registerJobApp } from './jobs.ts';
import { bindApp, parseAppInfo, registerWorkerApp, workerAppNames } from './workers.ts';

const code = (c: string) => (err: unknown) => err instanceof TabshardError && err.code === c;

/** Σ over a shard's examples of each key's value, in `shard.keys` order. */
function columnSums(s: DecodedShard): Float32Array {
  const out = new Float32Array(s.keys.length);
  for (let i = 0; i < s.col.length; i++) out[s.col[i]] += s.val[i];
  return out;
}

/** The word count's exact sums per key, as its job side prepared them. */
let exactCounts = new Map<number, number>();

registerWorkerApp({
  name: 'wordcount',
  bind(info) {
    const [counts] = info.tables;
    return {
      pulls: (shard) => [{ table: counts, keys: shard.keys }],
      gradient: async (_tf, shard, values) => {
        assert.equal(values[0].length, shard.keys.length);
        return { grads: [columnSums(shard)], loss: 0, examples: shard.labels.length };
      },
    };
  },
});

registerJobApp({
  name: 'wordcount',
  summary: 'sums of every feature over the corpus (a test application)',
  check: () => {},
  async prepare(opts): Promise<PreparedJob> {
    const data = await prepareSpamData({ shards: opts.shards, keyBits: 16 });
    const exact = new Map<number, number>();
    for (const bytes of data.shards) {
      const s = decodeShard(bytes);
      const sums = columnSums(s);
      for (const [i, k] of s.keys.entries()) exact.set(k, (exact.get(k) ?? 0) + sums[i]);
    }
    exactCounts = exact;
    const keys = Float64Array.from([...exact.keys()].sort((a, b) => a - b));
    const table: TableSpec = {
      job: opts.job,
      id: 1,
      name: 'counts',
      kind: 'sparse',
      keySpace: 2 ** 16,
      valueLength: 1,
      updater: 'sum',
      params: {},
      init: { kind: 'zeros' },
    };
    return {
      app: 'wordcount',
      job: opts.job,
      version: `wordcount-${data.version}`,
      shards: data.shards,
      tables: [table],
      iterations: 2,
      target: { accuracy: 1 },
      meta: { keys: keys.length },
      about: 'Counts every feature of the corpus.',
      // Accuracy: the share of keys that read the same whole number of passes over the data.
      async evaluate(read) {
        const v = await read(table, keys);
        const passes = Math.round(v[0] / exact.get(keys[0])!);
        let same = 0;
        keys.forEach((k, i) => {
          if (Math.abs(v[i] - passes * exact.get(k)!) <= 1e-3 * passes * Math.abs(exact.get(k)!) + 1e-4) same++;
        });
        return { accuracy: passes >= 1 ? same / keys.length : 0, logLoss: 0 };
      },
    };
  },
});

describe('application registries', () => {
  it('list the built-ins and what was registered, sorted, with a line each', () => {
    assert.deepEqual(jobAppNames(), ['cms', 'cnn', 'lda', 'logreg', 'textnn', 'wordcount']);
    assert.deepEqual(workerAppNames(), ['cms', 'cnn', 'lda', 'logreg', 'textnn', 'wordcount']);
    for (const a of listJobApps()) assert.ok(a.summary.length > 10, a.name);
  });

  it('refuse bad names, a second registration, a job side without a worker side, and unknown apps', () => {
    const worker = { name: 'x', bind: () => bindApp({ app: 'logreg', tables: ['w'] }) };
    for (const name of ['', 'Upper', '1st', 'a b', 'a'.repeat(33), 7])
      assert.throws(() => registerWorkerApp({ ...worker, name: name as string }), code('TS_ERR_INVALID_ARGUMENT'));
    assert.throws(() => registerWorkerApp({ ...worker, name: 'logreg' }), /already registered/);
    const prepare = () => Promise.reject(new Error('not run'));
    const check = () => {};
    assert.throws(() => registerJobApp({ name: 'lonely', summary: 's', check, prepare }), /has no worker side/);
    assert.throws(() => registerJobApp({ name: 'textnn', summary: 's', check, prepare }), /already registered/);
    assert.throws(() => jobApp('logreg').check({ data: 'mnist' }), /data must be spam or ctr, not "mnist"/);
    assert.throws(() => jobApp('textnn').check({ model: { dim: 4, depth: 2 } }), /textnn has no model setting depth/);
    assert.throws(() => jobApp('textnn').check({ model: { dim: 0.5 } }), code('TS_ERR_INVALID_ARGUMENT'));
    jobApp('textnn').check({ data: 'ctr', model: { hidden: 8 } });
    assert.throws(() => jobApp('logreg').check({ model: { topics: 3 } }), /logreg has no model setting topics/);
    assert.throws(() => jobApp('nope'), /unknown app "nope" \(registered: cms, cnn, lda, logreg, textnn, wordcount\)/);
    assert.throws(() => bindApp({ app: 'nope', tables: ['w'] }), /this worker cannot run app "nope"/);
  });

  it("check a job's app fields as a worker reads them from the gateway", () => {
    assert.deepEqual(parseAppInfo({ app: 'logreg', tables: ['weights'], name: 'x' }), {
      app: 'logreg',
      tables: ['weights'],
    });
    for (const bad of [
      null,
      { app: 3, tables: ['w'] },
      { app: 'logreg', tables: [] },
      { app: 'logreg', tables: [1] },
      { app: 'logreg', tables: ['w'], model: { dim: 'x' } },
      { app: 'textnn', tables: ['e'] },
      { app: 'textnn', tables: ['e', 'd'], model: { dim: 0, hidden: 4 } },
      { app: 'cnn', tables: ['w'] },
    ])
      assert.throws(() => parseAppInfo(bad), code('TS_ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
    const math = bindApp(parseAppInfo({ app: 'textnn', tables: ['e', 'd'], model: { dim: 4, hidden: 3 } }));
    const shard = { keys: Float64Array.of(5, 9) } as unknown as DecodedShard;
    assert.deepEqual(math.pulls(shard), [
      { table: 'e', keys: shard.keys },
      { table: 'd', keys: { begin: 0, end: 4 * 3 + 2 * 3 + 1 } },
    ]);
  });

  it('run a registered application through real nodes and the task loop: every count exactly right', async () => {
    const { driver, manager, run, close } = await inProcessJob({
      seed: 3,
      shards: 4,
      config: { tau: 0 },
      app: 'wordcount',
    });
    try {
      const totals = await Promise.all([run(), run()]);
      assert.equal(
        totals.reduce((n, t) => n + t.tasks, 0),
        8,
      );
      await driver.settle();
      assert.equal(driver.status().app, 'wordcount');
      assert.deepEqual(
        driver.metrics.map((m) => m.accuracy),
        [1, 1],
      );
      assert.ok(driver.reached);
      assert.deepEqual(await driver.auditTasks(), { tasks: 8, missing: 0, once: 8, more: 0 });
      // Two passes over the data, each shard's counts applied once per pass.
      const keys = Float64Array.from([...exactCounts.keys()].sort((a, b) => a - b));
      const v = await manager.pull(1, 1, keys);
      keys.forEach((k, i) => {
        assert.ok(Math.abs(v[i] - 2 * exactCounts.get(k)!) < 1e-3, `key ${k}: ${v[i]}`);
      });
    } finally {
      await close();
    }
  });
});
