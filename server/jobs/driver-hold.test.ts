/**
 * A job whose tables hold their pushes (`aggregate`, PROTOCOL.md §6 TABLE `hold`), end to end in
 * one process: two server nodes enforcing capabilities on the memory network, the manager, the
 * spam job's driver with the median rule, and two workers running the tab's task loop over
 * scheduler sessions. Every task is counted once (receipts), each node released each iteration
 * once and holds nothing at the end, and the model learns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeldStats } from '../node/held.ts';
import { inProcessJob } from './testkit.ts';

describe('a job with held aggregation', () => {
  it('trains with the median rule: each iteration released once on every node, every task counted once', async () => {
    const { manager, driver, run, close } = await inProcessJob({
      seed: 21,
      shards: 4,
      config: { iterations: 3, tau: 0, aggregate: { rule: 'median' } },
    });
    const released: number[] = [];
    driver.listen({
      log: (e) => (e as { ev?: string }).ev === 'released' && released.push((e as { clock: number }).clock),
    });
    try {
      const totals = await Promise.all([run(), run()]);
      assert.deepEqual(
        totals.map((t) => t.state),
        ['done', 'done'],
      );
      assert.equal(totals[0].tasks + totals[1].tasks, 12);
      await driver.settle();
      assert.deepEqual(released, [1, 2, 3]);
      assert.deepEqual(await driver.auditTasks(), { tasks: 12, missing: 0, once: 12, more: 0 });
      const m = driver.metrics;
      assert.ok(m.at(-1)!.logLoss < m[0].logLoss, JSON.stringify(m));
      const stats = (await manager.stats()) as Array<{
        tables: Array<{ job: number; name: string; held?: HeldStats }>;
      }>;
      for (const n of stats) {
        const w = n.tables.find((t) => t.job === 1 && t.name === 'weights')!;
        assert.deepEqual({ ...w.held, bytes: 0 }, { pushes: 0, bytes: 0, released: 3, dropped: 0 });
        assert.equal(w.held!.bytes, 0);
      }
      assert.equal(
        driver.status().workers.reduce((s, w) => s + w.tasksRefused, 0),
        0,
      );
    } finally {
      await close();
    }
  });
});
