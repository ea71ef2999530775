// The CNN job through real nodes (three dense tables pulled and pushed whole, Adam on the nodes,
// capabilities, receipts, at-most-once) and the task loop with tfjs on wasm: one pass of two
// workers over the digits takes the held-out accuracy from chance (0.1) to well over half right.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inProcessJob } from '../../server/jobs/testkit.ts';
import { jobApp } from '../jobs.ts';
import { cnnLayers } from './model.ts';

describe('CNN job', () => {
  let job: Awaited<ReturnType<typeof inProcessJob>>;
  before(async () => {
    job = await inProcessJob({ seed: 3, shards: 40, config: { tau: 0, iterations: 1 }, app: 'cnn' });
  });
  after(() => job?.close());

  it('trains with two stateless workers: every task once, the held-out accuracy far above chance', async (t) => {
    const { driver, manager } = job;
    assert.deepEqual(
      driver.app.tables.map((t) => [t.name, t.kind, t.keySpace, t.updater]),
      cnnLayers({ filters1: 16, filters2: 32, hidden: 0 }).map((l) => [l.name, 'dense', l.size, 'adam']),
    );
    const read = (i: number) =>
      manager.pull(1, driver.app.tables[i].id, { begin: 0, end: driver.app.tables[i].keySpace });
    const before = await read(2);
    const totals = await Promise.all([job.run(), job.run()]);
    assert.equal(totals[0].tasks + totals[1].tasks, 40);
    await driver.settle();
    assert.deepEqual(await driver.auditTasks(), { tasks: 40, missing: 0, once: 40, more: 0 });
    const afterwards = await read(2);
    assert.ok(
      afterwards.some((v, i) => v !== before[i]),
      'the output layer moved',
    );
    const [m] = driver.metrics;
    t.diagnostic(JSON.stringify(m));
    // Chance is 0.1. One pass of 40 steps reaches 0.78-0.9 (the two workers interleave as timing
    // has it, so the order of pushes, and the figure, varies from run to run).
    assert.ok(m.accuracy >= 0.6, `held-out accuracy after one pass: ${m.accuracy}`);
    assert.ok(m.logLoss < Math.log(10) / 2, `held-out cross-entropy ${m.logLoss}`);
  });

  it('refuses options it cannot use before preparing anything', () => {
    const app = jobApp('cnn');
    assert.throws(() => app.check({ data: 'spam' }), /cnn: data must be mnist/);
    assert.throws(() => app.check({ keyBits: 20 }), /--key-bits does not apply/);
    assert.throws(() => app.check({ shards: 9000 }), /shards must be an integer in \[1, 8000\]/);
    assert.throws(() => app.check({ model: { filters1: 0 } }), /filters1 must be an integer in \[1, 256\]/);
    assert.throws(() => app.check({ model: { dim: 4 } }), /no model setting dim/);
    assert.throws(() => app.check({ model: { hidden: -1 } }), /hidden must be an integer in \[0, 1024\]/);
    app.check({ data: 'mnist', shards: 20, model: { filters1: 4 } });
  });
});
