/**
 * Failover end to end: a real cluster (`tabshard start`, three server-node processes, k = 1),
 * four Chromium tabs training the spam job over WebRTC, and an oracle process (e2e/oracle.ts)
 * pushing +1 to 2048 keys of job 0's `sum-sparse` spread over the whole key space, one push in
 * flight at all times. Once the job has made progress one server node is killed with SIGKILL.
 * The manager declares it dead, installs the ring without it, the tabs and the oracle re-slice
 * what was not acknowledged, and:
 *  - the job still reaches its target, and the audit shows every task applied exactly once;
 *  - the oracle saw no push fail, and every key reads exactly the number of pushes acknowledged
 *    (none lost, none applied twice);
 *  - `/metrics` says `tabshard_node_up` 0 for the victim and 1 for the others, `/api/stats`
 *    answers 200 with an `error` for the victim.
 * The oracle is a child process and is stopped by PID in `finally`, with the harness.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClusterEvent, Harness } from './harness.ts';
import { assertCompleted, iterationDone, type TabStatus, tab, working } from './jobs.ts';
import { masters, nodeUp, Oracle } from './oracle-run.ts';

const isNodeDead = (node: string) => (ev: ClusterEvent) =>
  ev.event === 'cluster' && ev.type === 'node-dead' && ev.node === node;

describe('failover in a real cluster', { timeout: 150_000 }, () => {
  it('kill -9 of a server node while 4 tabs train and an oracle pushes: no update lost or doubled', async () => {
    const t0 = performance.now();
    const h = await Harness.start({ startArgs: ['--iterations', '20'] });
    let oracle: Oracle | null = null;
    try {
      const pages = await h.openPages(4, { path: '/?job=1' });
      oracle = Oracle.start(h.gateway, { adminToken: h.cluster.adminToken });
      await working(pages);
      const ready = await oracle.waitFor((l) => l.event === 'oracle-ready', 30_000, 'ready line');
      // Progress before the kill: an iteration of the job done, and the oracle's pushes acknowledged.
      await h.waitForEvent(iterationDone(0), 60_000);
      await oracle.waitFor((l) => l.event === 'oracle' && (l.acked as number) >= 20, 30_000, '20 pushes acknowledged');

      // The victim: not the first node, and one that masters key ranges (of the job and of the oracle's keys).
      const victim = h.cluster.nodes[1];
      const others = h.cluster.nodes.filter((n) => n !== victim).map((n) => n.id);
      assert.ok((await masters(h))[victim.id] > 0, `${victim.id} masters no key range`);
      assert.ok(
        ((ready.owners as Record<string, number>)[victim.id] ?? 0) > 0,
        `${victim.id} masters none of the oracle's keys`,
      );
      assert.deepEqual(
        h.events.filter((ev) => ev.event === 'cluster' && ev.type === 'node-dead'),
        [],
        'no node was declared dead before the kill',
      );
      // Kill as a tab takes a new task: its reads and pushes are about to be in flight.
      const from = h.events.length;
      const lease = await h.waitForEvent(
        (ev) => ev.event === 'scheduler' && ev.ev === 'lease' && h.events.indexOf(ev) >= from,
        30_000,
      );
      const ackedAtKill = oracle.acked;
      const killedAt = performance.now();
      const eventsAtKill = h.events.length;
      process.kill(victim.pid, 'SIGKILL');

      const dead = await h.waitForEvent(isNodeDead(victim.id), 10_000);
      const deadAfterMs = performance.now() - killedAt;
      // The oracle goes on under the new ring.
      await oracle.waitFor(
        (l) =>
          l.event === 'oracle' && (l.ring as number) >= (dead.ring as number) && (l.acked as number) > ackedAtKill + 20,
        30_000,
        'pushes acknowledged under the new ring',
      );

      const { status, audit } = await assertCompleted(h, 90_000);
      const after = h.events.slice(eventsAtKill);
      const iterationsAfterKill = after.filter((ev) => ev.event === 'scheduler' && ev.ev === 'iteration').length;
      assert.ok(iterationsAfterKill >= 2, `only ${iterationsAfterKill} iterations finished after the kill`);
      assert.deepEqual(
        h.events.filter((ev) => ev.event === 'cluster' && ev.type === 'node-dead').map((ev) => ev.node),
        [victim.id],
        'only the victim was declared dead',
      );
      // Every tab ends its run without an error (it hears the job is done at its next LEASE).
      await Promise.all(
        pages.map((p) =>
          p.waitForFunction(
            () => ['done', 'failed'].includes((window as unknown as { tabshard: TabStatus }).tabshard.state),
            null,
            { timeout: 30_000 },
          ),
        ),
      );
      for (const p of pages) {
        const s = await tab(p);
        assert.equal(s.error, undefined, `a tab failed: ${s.error}`);
        assert.equal(s.state, 'done');
      }

      const up = await nodeUp(h);
      assert.deepEqual(up, { ...Object.fromEntries(others.map((n) => [n, 1])), [victim.id]: 0 });
      const stats = await h.api<{ nodes: Array<{ node: string; error?: string }> }>('/api/stats');
      const byNode = new Map(stats.nodes.map((n) => [n.node, n]));
      assert.equal(typeof byNode.get(victim.id)?.error, 'string', JSON.stringify(byNode.get(victim.id)));
      for (const n of others) assert.equal(byNode.get(n)?.error, undefined, JSON.stringify(byNode.get(n)));

      const final = await oracle.stop();
      assert.deepEqual(final.errors, [], `${final.errorCount} oracle errors`);
      assert.ok(final.acked > ackedAtKill, 'the oracle pushed on after the kill');
      assert.deepEqual(
        { min: final.min, max: final.max, lostKeys: final.lostKeys, doubledKeys: final.doubledKeys },
        { min: final.acked, max: final.acked, lostKeys: 0, doubledKeys: 0 },
        `${final.acked} pushes acknowledged`,
      );
      assert.equal(final.owners[victim.id], undefined, 'the victim masters none of the keys under the new ring');
      console.log(
        `failover: ${victim.id} killed as task ${lease.task} was leased, declared dead ${Math.round(deadAfterMs)} ms after kill -9 (${dead.reason}, ring v${dead.ring} installed in ${dead.ms} ms); ` +
          `oracle ${final.acked} pushes of ${(ready.keys as number) ?? 0} keys (${ackedAtKill} before the kill), slowest ack ${final.maxAckMs} ms; ` +
          `job ${status.iterationsDone} iterations (${iterationsAfterKill} after the kill), ${audit.tasks} tasks once each, ${status.reassignments} reassignments; ` +
          `${Math.round((performance.now() - t0) / 1000)} s`,
      );
    } finally {
      oracle?.kill();
      await h.stop();
    }
  });
});
