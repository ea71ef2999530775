/**
 * Backup tasks with browser tabs (`tabshard start --backups`, PROTOCOL.md §6.1): three worker-page
 * tabs train the demo job under BSP, one of them stalling 3 s after every task (`?stall=3000:1`).
 * The stalling tab starts first and holds a task when the others arrive; they finish the rest of
 * the iteration, wait at the gate, and back its task up. The job reaches its end with backups
 * that won, every task applied once, and the stalling tab's late reports refused quietly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness } from './harness.ts';
import { iterationDone, type JobStatus, PROGRESS, type TabStatus, tab } from './jobs.ts';

describe('backup tasks in browser tabs', { timeout: 300_000 }, () => {
  it('two tabs back up a stalling tab’s tasks: the job ends, backups won, every task once', async () => {
    const iterations = 4;
    const h = await Harness.start({ startArgs: ['--shards', '4', '--iterations', String(iterations), '--backups'] });
    try {
      const slow = await h.openPage({ path: '/?job=1&stall=3000:1' });
      // Arranged, not raced: the stalling tab holds a lease before the others open.
      await slow.waitForFunction(
        () => (window as unknown as { tabshard: TabStatus & { inTask?: boolean } }).tabshard.inTask === true,
        null,
        PROGRESS,
      );
      const fast = await h.openPages(2, { path: '/?job=1' });
      await h.waitForEvent(iterationDone(iterations - 1), 120_000);
      const status = await h.api<JobStatus & { backups?: { granted: number; won: number } }>('/api/jobs/1');
      assert.ok(status.backups && status.backups.won >= 1, `backups ${JSON.stringify(status.backups)}`);
      const audit = await h.api<{ tasks: number; once: number; missing: number; more: number }>('/api/jobs/1/audit');
      assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [16, 16, 0, 0]);
      const tabs = await Promise.all([slow, ...fast].map((p) => tab(p)));
      assert.equal(
        tabs.reduce((n, t) => n + t.tasks, 0),
        16,
        `tasks counted by the tabs: ${tabs.map((t) => t.tasks)}`,
      );
      assert.ok(
        fast.every((p) => (h.errors.get(p) ?? []).length === 0),
        'no errors on the fast pages',
      );
    } finally {
      await h.stop();
    }
  });
});
