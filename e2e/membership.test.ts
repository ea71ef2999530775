/**
 * Live join and drain end to end: a real cluster (`tabshard start`, three server-node processes,
 * k = 1), four Chromium tabs training the spam job over WebRTC, and the oracle process
 * (e2e/oracle.ts) pushing +1 to 2048 keys of job 0's `sum-sparse` spread over the whole key
 * space, one push in flight at all times. Mid-job a fourth node starts with `tabshard server
 * --join <gateway>` (a real process), then n2 is drained through the admin API. Afterwards:
 *  - the job reaches its target and the audit shows every task applied exactly once;
 *  - every oracle key reads exactly the number of pushes acknowledged (none lost, none doubled);
 *  - n2 masters nothing and is no longer a member; n1, n3 and n4 each master 1/3 of the key
 *    space, ±10% (`GET /api/nodes`, keyShare).
 * The joined node is spawned with --lifeline and killed by PID in `finally`, with the oracle
 * and the harness.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { Harness, ROOT } from './harness.ts';
import { assertCompleted, iterationDone, working } from './jobs.ts';
import { Oracle } from './oracle-run.ts';

interface NodesReply {
  ring: number;
  nodes: Array<{ id: string; state: string; masters: number; keyShare: number | null }>;
}

/** `tabshard server --join`: resolves once it printed its joined line. */
function joinNode(gateway: string, token: string): { child: ChildProcess; joined: Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['bin/tabshard.mjs', 'server', '--id', 'n4', '--lifeline', '--join', gateway], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TABSHARD_ADMIN_TOKEN: token },
  });
  const joined = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the joining node exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === 'joined') resolve(ev);
      } catch {
        // not a JSON line
      }
    });
  });
  return { child, joined };
}

describe('live join and drain in a real cluster', { timeout: 240_000 }, () => {
  it('a node joins mid-job, another drains: no update lost or doubled, the key share ends even', async () => {
    const h = await Harness.start({ startArgs: ['--iterations', '20'] });
    let oracle: Oracle | null = null;
    let n4: ChildProcess | null = null;
    try {
      const auth = { authorization: `Bearer ${h.cluster.adminToken}` };
      const pages = await h.openPages(4, { path: '/?job=1' });
      oracle = Oracle.start(h.gateway, { adminToken: h.cluster.adminToken });
      await working(pages);
      await oracle.waitFor((l) => l.event === 'oracle-ready', 30_000, 'ready line');
      await h.waitForEvent(iterationDone(0), 60_000);
      await oracle.waitFor((l) => l.event === 'oracle' && (l.acked as number) >= 20, 30_000, '20 pushes acknowledged');

      const join = joinNode(h.gateway, h.cluster.adminToken);
      n4 = join.child;
      const joined = await join.joined;
      const afterJoin = oracle.acked;
      const nodes1 = await h.api<NodesReply>('/api/nodes', { headers: auth });
      // Members, none dead (a node busy on 2 cores may be 'suspect' for a moment: silence > 400 ms).
      assert.deepEqual(nodes1.nodes.map((n) => n.id).sort(), ['n1', 'n2', 'n3', 'n4']);
      for (const n of nodes1.nodes) assert.ok(n.state === 'up' || n.state === 'suspect', `${n.id} is ${n.state}`);
      assert.equal(nodes1.ring, joined.ring);
      assert.ok(nodes1.nodes.find((n) => n.id === 'n4')!.masters > 0, 'the joined node masters ranges');
      await oracle.waitFor(
        (l) => l.event === 'oracle' && (l.acked as number) > afterJoin + 20,
        30_000,
        'pushes acknowledged after the join',
      );

      const res = await fetch(`${h.gateway}/api/nodes/n2/drain`, { method: 'POST', headers: auth });
      assert.equal(res.status, 200, await res.clone().text());
      const afterDrain = oracle.acked;
      await oracle.waitFor(
        (l) => l.event === 'oracle' && (l.acked as number) > afterDrain + 20,
        30_000,
        'pushes acknowledged after the drain',
      );

      const { audit } = await assertCompleted(h, 180_000);
      assert.equal(audit.once, audit.tasks);
      const final = await oracle.stop();
      assert.deepEqual(final.errors, [], `${final.errorCount} oracle errors`);
      assert.deepEqual(
        { min: final.min, max: final.max, lostKeys: final.lostKeys, doubledKeys: final.doubledKeys },
        { min: final.acked, max: final.acked, lostKeys: 0, doubledKeys: 0 },
        `${final.acked} pushes acknowledged`,
      );
      assert.equal(final.owners.n2, undefined, 'the drained node masters none of the keys');

      // The cluster's own account of both changes (docs/using.md, --json events).
      for (const [type, node] of [
        ['node-joined', 'n4'],
        ['node-drained', 'n2'],
      ]) {
        const ev = await h.waitForEvent((e) => e.event === 'cluster' && e.type === type && e.node === node, 5000);
        for (const k of ['ring', 'ms', 'copyMs', 'frozenMs']) assert.equal(typeof ev[k], 'number', `${type}.${k}`);
        assert.ok(
          (ev.copyMs as number) + (ev.frozenMs as number) <= (ev.ms as number) + 1,
          'the steps are within the whole',
        );
      }
      const nodes2 = await h.api<NodesReply>('/api/nodes', { headers: auth });
      assert.deepEqual(nodes2.nodes.map((n) => n.id).sort(), ['n1', 'n3', 'n4'], 'n2 left');
      for (const n of nodes2.nodes) {
        assert.ok(n.keyShare !== null);
        const even = n.keyShare * nodes2.nodes.length;
        assert.ok(even > 0.9 && even < 1.1, `${n.id} masters ${even.toFixed(3)} of an even share`);
      }
      console.log(
        `membership: n4 joined (ring v${joined.ring}), n2 drained; oracle ${final.acked} pushes exact, ` +
          `shares ${nodes2.nodes.map((n) => `${n.id} ${(100 * (n.keyShare ?? 0)).toFixed(1)} %`).join(', ')}`,
      );
    } finally {
      oracle?.kill();
      if (n4 && n4.exitCode === null && n4.signalCode === null) n4.kill('SIGKILL');
      await h.stop();
    }
  });
});
