/**
 * Live join and drain on the seeded in-memory network (k = 1): while a worker pushes all the
 * time, a fourth node joins (pre-copy under the union of both rings' chains, then the switch)
 * and then a node drains and leaves. Every acknowledged push is there exactly once (sum tables,
 * dense and sparse, and AdaGrad against a run without membership changes), the joined node
 * masters its share, and the drained node holds nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { decodeObject, encodeJson } from '../../shared/protocol/control.ts';
import { MsgType } from '../../shared/protocol/frame.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { codeOf } from '../scheduler/testkit.ts';
import { ServerNode } from './node.ts';
import { tableSpec, testCluster } from './testkit.ts';

const DENSE = 1 << 17;
const TABLES = [
  tableSpec(1, 'dense', 'dense', DENSE, 1, 'sum'),
  tableSpec(2, 'sparse', 'sparse', 2 ** 40, 1, 'sum'),
  tableSpec(3, 'ada', 'sparse', 2 ** 40, 2, 'adagrad', { lr: 0.1 }),
];
const SPARSE_KEYS = Float64Array.from({ length: 3000 }, (_, i) => i * 366_503_875);

describe('live join and drain', () => {
  it('a node joins and another drains while pushes run: none lost, none doubled', async () => {
    const net = new MemoryNetwork({ seed: 21, maxDelay: 2 });
    const c = await testCluster(TABLES, { net, replicas: 1, vnodes: 64 });
    const n4 = new ServerNode('n4', { dialer: net.dialer() });
    n4.listen(net.listen('n4'));
    const w = await Worker.connect({ seed: async () => c.mgr.info, dialers: { memory: net.dialer() }, workerId: 3 });
    try {
      const dense = w.table('dense');
      const sparse = w.table('sparse');
      const ada = w.table('ada');
      const ones = new Float32Array(DENSE).fill(1);
      const sparseOnes = new Float32Array(SPARSE_KEYS.length).fill(1);
      const grads = new Float32Array(2 * SPARSE_KEYS.length).fill(0.5);
      let rounds = 0;
      let stop = false;
      const loop = (async () => {
        while (!stop) {
          await Promise.all([
            w.wait(dense.push({ begin: 0, end: DENSE }, ones)),
            w.wait(sparse.push(SPARSE_KEYS, sparseOnes)),
            w.wait(ada.push(SPARSE_KEYS, grads)),
          ]);
          rounds++;
        }
      })();
      const at = async (n: number) => {
        while (rounds < n) await new Promise((r) => setTimeout(r, 2));
      };
      await at(3);
      await c.mgr.join({ id: 'n4', addresses: { memory: 'memory://n4' }, control: 'memory://n4' });
      const afterJoin = rounds;
      await at(afterJoin + 3);
      await c.mgr.drain('n1');
      const afterDrain = rounds;
      await at(afterDrain + 3);
      stop = true;
      await loop;
      assert.deepEqual([...c.mgr.info.ring.nodes].sort(), ['n2', 'n3', 'n4']);
      const d = (await w.wait(dense.pull({ begin: 0, end: DENSE })))!;
      for (let k = 0; k < DENSE; k++)
        if (d[k] !== rounds) assert.fail(`dense key ${k}: ${d[k]}, ${rounds} pushes acknowledged`);
      const s = (await w.wait(sparse.pull(SPARSE_KEYS)))!;
      for (let i = 0; i < s.length; i++)
        if (s[i] !== rounds) assert.fail(`sparse key ${SPARSE_KEYS[i]}: ${s[i]}, ${rounds} pushes acknowledged`);
      // AdaGrad after `rounds` equal pushes, as one node would compute it (updater state moved too).
      const a = (await w.wait(ada.pull(SPARSE_KEYS)))!;
      let acc = 0.1;
      let v = 0;
      for (let r = 0; r < rounds; r++) {
        acc = Math.fround(acc + 0.25);
        v = Math.fround(v - Math.fround(Math.fround(0.1 * 0.5) / Math.fround(Math.sqrt(acc))));
      }
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - v) < 1e-5, `ada key ${i}: ${a[i]} vs ${v}`);
      const n4Stats = n4.stats();
      assert.ok(
        n4Stats.tables.every((t) => t.keys > 0),
        'the joined node holds a share of every table',
      );
      const n1 = c.nodes.find((n) => n.id === 'n1')!;
      // (A dense table keeps its pages allocated, reset to their initial values: count sparse keys.)
      assert.deepEqual(
        n1
          .stats()
          .tables.filter((t) => t.kind === 'sparse')
          .map((t) => t.keys),
        [0, 0],
        'the drained node dropped everything it gave away',
      );
      assert.ok(afterJoin > 3 && afterDrain > afterJoin, 'pushes ran through both changes');
    } finally {
      w.close();
      await c.close();
      await n4.close();
    }
  });

  it('STATS settled: answered once the node has no copy pending (the join waits on it), or after ms; a bad wait is malformed', async () => {
    const net = new MemoryNetwork({ seed: 5, maxDelay: 1 });
    const c = await testCluster([TABLES[1]], { net, replicas: 1, vnodes: 16 });
    const n4 = new ServerNode('n4', { dialer: net.dialer() });
    const listener = net.listen('n4');
    n4.listen(listener);
    // The manager's connection to n4 passes; the masters' links (dialled for the copies) are held
    // shut until `open()`: what they carry waits, so their copies stay pending.
    const accept = listener.onconnection!;
    const held: Array<() => void> = [];
    let first = true;
    let gated = true;
    let sawCopy!: () => void;
    const copyArrived = new Promise<void>((r) => {
      sawCopy = r;
    });
    listener.onconnection = (conn: Conn) => {
      accept(conn);
      if (first) {
        first = false;
        return;
      }
      const deliver = conn.onmessage!;
      conn.onmessage = (msg) => {
        if (!gated) return deliver(msg);
        const kept = msg.slice();
        held.push(() => deliver(kept));
        sawCopy();
      };
    };
    const w = await Worker.connect({ seed: async () => c.mgr.info, dialers: { memory: net.dialer() }, workerId: 4 });
    const admin = new RpcPeer(await net.dialer().dial('memory://n1'));
    try {
      const t = w.table('sparse');
      await w.wait(t.push(SPARSE_KEYS, new Float32Array(SPARSE_KEYS.length).fill(2)));
      const stats = async (node: RpcPeer, body: unknown) =>
        decodeObject(await node.call((rid) => encodeJson(MsgType.STATS, rid, body)));
      // Nothing pending: answered at once; a wait out of its domain is refused.
      assert.equal(
        ((await stats(admin, { settled: 'copies' })).replication as { copiesPending: number }).copiesPending,
        0,
      );
      assert.equal(await codeOf(stats(admin, { settled: 'everything' })), 'TS_ERR_FRAME_MALFORMED');
      assert.equal(await codeOf(stats(admin, { settled: 'copies', ms: 10_001 })), 'TS_ERR_FRAME_MALFORMED');
      assert.equal(await codeOf(stats(admin, { settled: 'forwards', ms: 1.5 })), 'TS_ERR_FRAME_MALFORMED');
      assert.equal((await stats(admin, [1, 2])).node, 'n1', 'another body still asks for no wait');

      const joined = c.mgr.join({ id: 'n4', addresses: { memory: 'memory://n4' }, control: 'memory://n4' });
      await copyArrived;
      const copying = c.nodes.filter((n) => n.stats().replication!.copiesPending > 0);
      assert.ok(copying.length > 0, 'a master has a copy to n4 pending');
      const peer = new RpcPeer(await net.dialer().dial(`memory://${copying[0].id}`));
      try {
        // Still pending after 20 ms: answered at its ms, saying so.
        const early = (await stats(peer, { settled: 'copies', ms: 20 })).replication as { copiesPending: number };
        assert.ok(early.copiesPending > 0);
        let answered = false;
        const waited = stats(peer, { settled: 'copies', ms: 10_000 }).then((s) => {
          answered = true;
          return s;
        });
        await new Promise((r) => setImmediate(r));
        assert.equal(answered, false, 'not answered while the copies are held');
        gated = false;
        for (const run of held.splice(0)) run();
        const done = (await waited).replication as { copiesPending: number; copies: number };
        assert.equal(done.copiesPending, 0);
        assert.ok(done.copies > 0);
        await joined;
        assert.deepEqual([...c.mgr.info.ring.nodes].sort(), ['n1', 'n2', 'n3', 'n4']);
        const got = (await w.wait(t.pull(SPARSE_KEYS)))!;
        assert.ok(
          got.every((v) => v === 2),
          'every key as pushed after the join',
        );
      } finally {
        peer.conn.close();
      }
    } finally {
      admin.conn.close();
      w.close();
      await c.close();
      await n4.close();
    }
  });
});
