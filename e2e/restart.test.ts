/**
 * Whole-cluster crash and restart end to end: a real cluster (`tabshard start` with a data
 * directory, three server-node processes) and four Chromium tabs training the spam job. Once a
 * few iterations are checkpointed, every process of the cluster is killed with SIGKILL (the start
 * process and its nodes, as a power cut would). `tabshard start` on the same data directory then:
 *  - resumes the job at its last checkpointed iteration (not 0), on the same port;
 *  - the open tabs reconnect by themselves (no reload) and finish the job at its target;
 *  - the audit table counts every task exactly once over the whole run (the tasks done after the
 *    checkpoint ran again; the checkpoint's are not repeated).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ClusterEvent, Harness } from './harness.ts';
import { assertCompleted, type TabStatus, tab, working } from './jobs.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('restart after a whole-cluster crash', { timeout: 240_000 }, () => {
  it('kill -9 of every cluster process mid-job: the job resumes at its checkpoint and the tabs reconnect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabshard-restart-'));
    const args = ['--data-dir', dir, '--iterations', '12'];
    const h = await Harness.start({ startArgs: args });
    try {
      const pages = await h.openPages(4, { path: '/?job=1' });
      await working(pages);
      // Marks each page's JavaScript realm: a reload would lose it.
      for (const p of pages) await p.evaluate(() => Object.assign(window, { beforeCrash: true }));
      const checkpoint = await h.waitForEvent(
        (ev) => ev.event === 'scheduler' && ev.ev === 'checkpoint' && (ev.iteration as number) >= 3,
        120_000,
      );
      // Kill as a tab takes a new task, so pushes are in flight.
      const from = h.events.length;
      await h.waitForEvent((ev) => ev.event === 'scheduler' && ev.ev === 'lease' && h.events.indexOf(ev) >= from);
      const before = h.cluster;
      const doneAtKill = (await h.api<{ tasks: { done: number } }>('/api/jobs/1')).tasks.done;
      await h.killCluster();
      for (const n of before.nodes)
        for (let i = 0; alive(n.pid) && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        before.nodes.filter((n) => alive(n.pid)).map((n) => n.id),
        [],
        'no server node outlives the kill',
      );
      const lastCheckpoint = [...h.events]
        .reverse()
        .find((ev) => ev.event === 'scheduler' && ev.ev === 'checkpoint') as ClusterEvent;

      const restartAt = h.events.length;
      await h.restartCluster({ startArgs: args });
      assert.equal(h.gateway, before.gateway, 'the gateway listens where it did');
      // The data directory's line, printed before the ready line.
      const said = h.events
        .slice(restartAt)
        .map((ev) =>
          ev.event === 'data'
            ? /^job 1 resumes from checkpoint \d+ \(iteration (\d+)\)/.exec(String(ev.message))
            : null,
        )
        .find((m) => m !== null);
      assert.ok(said, 'the job was resumed');
      const resumed = { clock: Number(said[1]) };
      assert.equal(resumed.clock, lastCheckpoint.iteration, 'resumed at the last checkpointed iteration');
      assert.ok(resumed.clock >= (checkpoint.iteration as number) && resumed.clock > 0);
      const status = await h.api<{ iterationsDone: number; tasks: { done: number } }>('/api/jobs/1');
      assert.ok(status.iterationsDone >= (resumed.clock as number), 'the job did not start over');
      assert.ok(status.tasks.done <= doneAtKill, 'tasks after the checkpoint are to run again');

      const { audit } = await assertCompleted(h, 180_000);
      assert.equal(audit.once, audit.tasks, 'every task applied exactly once over both runs');
      const leasesAfter = h.events.slice(restartAt).filter((ev) => ev.event === 'scheduler' && ev.ev === 'lease');
      const shards = (await h.api<{ shards: number }>('/api/jobs/1')).shards;
      const firstIteration = Math.min(...leasesAfter.map((ev) => Math.floor(((ev.task as number) - 1) / shards)));
      assert.equal(firstIteration, resumed.clock, 'no task of a checkpointed iteration ran again');
      for (const p of pages) {
        const s = (await tab(p)) as TabStatus;
        assert.equal(s.error, undefined, `a tab failed: ${s.error}`);
        assert.ok((s.reconnects ?? 0) >= 1, 'the tab reconnected');
        assert.equal(await p.evaluate(() => (window as unknown as { beforeCrash?: boolean }).beforeCrash), true);
      }
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
