/**
 * Backup tasks end to end in one process (server/scheduler/backups.ts, PROTOCOL.md §6.1): the
 * spam job on two real server nodes with capabilities and receipts, three workers running the
 * tab's task loop, one of which stalls 2 s after every second task. The stalled tasks are backed
 * up by the idle workers and the backups finish first; the stalled worker's late pushes are
 * duplicates. Every task is applied exactly once (the audit), with pushes applied as they land
 * and with held aggregation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DriverConfig } from './driver.ts';
import { inProcessJob } from './testkit.ts';

async function withStaller(config: DriverConfig) {
  const { driver, run, close } = await inProcessJob({
    seed: 33,
    shards: 4,
    config: { iterations: 3, tau: 0, backups: true, ...config },
  });
  try {
    const totals = await Promise.all([run(), run(), run({ stall: { ms: 2000, every: 2 } })]);
    assert.deepEqual(
      totals.map((t) => t.state),
      ['done', 'done', 'done'],
    );
    await driver.settle();
    const status = driver.status();
    // Tasks counted by their workers: a task the stalled worker lost to its backup is not its own.
    assert.equal(
      totals.reduce((n, t) => n + t.tasks, 0),
      12,
    );
    assert.ok(status.backups && status.backups.won >= 1, `backups ${JSON.stringify(status.backups)}`);
    assert.deepEqual(await driver.auditTasks(), { tasks: 12, missing: 0, once: 12, more: 0 });
    assert.equal(
      status.workers.reduce((s, w) => s + w.tasksRefused, 0),
      0,
    );
    const m = driver.metrics;
    assert.ok(m.at(-1)!.logLoss < m[0].logLoss, JSON.stringify(m));
  } finally {
    await close();
  }
}

describe('a job with backup tasks', () => {
  it('backs up a stalled worker’s tasks: the backups win, every task applied exactly once', async () => {
    await withStaller({});
  });

  it('the same with held aggregation (median): the held pushes of either attempt count once', async () => {
    await withStaller({ aggregate: { rule: 'median' } });
  });
});
