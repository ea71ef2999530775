/**
 * A worker across a server failover (docs/workers.md, "When the ring changes"): it follows the
 * ring the nodes push when the manager installs a new one, and re-slices what was not
 * acknowledged to the new owners. On the seeded in-memory network, with the failover done the
 * way the manager will do it: the dead node is closed, then the ring without it is installed on
 * the live nodes (ServerManager.installRing).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import { codeOf } from '../server/scheduler/testkit.ts';
import type { ClusterInfo } from '../shared/cluster.ts';
import type { TabshardError } from '../shared/errors.ts';
import { encodeJson } from '../shared/protocol/control.ts';
import { decodeFrame, type Frame, MsgType, type TaskStamp } from '../shared/protocol/frame.ts';
import { ackIsDuplicate, encodePush, type KvKeys } from '../shared/protocol/kv.ts';
import { Ring, type TableShape } from '../shared/ring.ts';
import { RpcPeer } from '../shared/rpc.ts';
import { resliceKeys, sliceByNode } from '../shared/slicing.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type Conn, concatParts, type Dialer } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

/** Large enough to be spread over the three nodes (K·d above the ring's small-table size). */
const K = 1 << 18;
const TABLE = tableSpec(1, 'sum', 'dense', K);
const SHAPE: TableShape = { id: 1, keySpace: K, valueLength: 1 };
const ALL = { begin: 0, end: K };
const ONES = new Float32Array(K).fill(1);

/** A frame a worker sent, and where to. */
interface Sent {
  to: string;
  f: Frame;
}

/** Wraps a dialer so that every frame sent is recorded (decoded from a copy), and every connection dialled kept. */
function recordingDialer(inner: Dialer, sent: Sent[], conns: Map<string, Conn[]>): Dialer {
  return {
    kind: inner.kind,
    async dial(address: string): Promise<Conn> {
      const conn = await inner.dial(address);
      conns.set(address, [...(conns.get(address) ?? []), conn]);
      const send = conn.send.bind(conn);
      conn.send = (parts, onSent) => {
        sent.push({ to: address.replace('memory://', ''), f: decodeFrame(concatParts(parts).slice()) });
        send(parts, onSent);
      };
      return conn;
    },
  };
}

/** Sends `build` to the node at `address` over a connection of its own (as the manager would, or a replica). */
async function callNode(net: MemoryNetwork, address: string, build: (id: number) => Uint8Array[]): Promise<Frame> {
  const peer = new RpcPeer(await net.dialer().dial(address));
  try {
    return await peer.call(build);
  } finally {
    peer.close();
  }
}

/** Every key of `keys` spelled out. */
function keyList(k: KvKeys): number[] {
  if (k.kind === 'list') return Array.from(k.keys);
  const b = k.kind === 'range' ? [k.begin, k.end] : Array.from(k.bounds);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) for (let x = b[i]; x < b[i + 1]; x++) out.push(x);
  return out;
}

const sameStamp = (a: TaskStamp | null, b: TaskStamp | null) =>
  a !== null && b !== null && a.worker === b.worker && a.task === b.task && a.attempt === b.attempt && a.seq === b.seq;

const tableStats = (c: TestCluster, node: string) => c.nodes.find((n) => n.id === node)!.stats().tables[0];

/**
 * A seed that answers once (the worker's connect) with the cluster as the manager describes it,
 * then never again: whatever ring the worker has later was pushed to it by a node.
 */
function onceSeed(c: TestCluster): { seed: () => Promise<ClusterInfo>; calls: () => number } {
  let calls = 0;
  return {
    seed: () => (calls++ === 0 ? Promise.resolve(c.mgr.info) : new Promise<ClusterInfo>(() => {})),
    calls: () => calls,
  };
}

describe('a worker following ring changes', () => {
  let c: TestCluster | null = null;
  afterEach(async () => {
    await c?.close();
    c = null;
  });

  it('installs the ring the live nodes push after a failover, without asking the seed', async () => {
    const net = new MemoryNetwork({ seed: 31, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const seed = onceSeed(c);
    const w = await Worker.connect({ seed: seed.seed, dialers: { memory: net.dialer() }, workerId: 3 });
    try {
      const t = w.table('sum');
      await w.connectAll();
      const v1 = w.currentRing;
      assert.equal(v1.version, 1);
      const next = v1.withNodes(['n1', 'n3']);
      await c.nodes[1].close();
      await c.mgr.installRing(next);
      assert.equal(await w.awaitRing(1, 5000), true);
      assert.deepEqual(w.currentRing.toJSON(), next.toJSON());
      assert.deepEqual(w.cluster.ring, next.toJSON());
      assert.deepEqual(Object.keys(w.cluster.addresses).sort(), ['n1', 'n3']);
      assert.equal(seed.calls(), 1, 'the ring came from a push: the seed was asked only at connect');
      assert.equal(w.table('sum'), t, 'tables are kept');
      assert.equal(await w.awaitRing(1, 0), true, 'at once when the ring is already newer');
      assert.equal(await w.awaitRing(2, 10), false, 'false after the wait without a newer ring');
    } finally {
      w.close();
    }
  });
});

describe('a worker across a failover', () => {
  let c: TestCluster | null = null;
  afterEach(async () => {
    await c?.close();
    c = null;
  });

  it('completes every push made before, during and after a node dies, and the new owners serve its keys', async () => {
    const net = new MemoryNetwork({ seed: 32, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const seed = onceSeed(c);
    const w = await Worker.connect({ seed: seed.seed, dialers: { memory: net.dialer() }, workerId: 4 });
    try {
      const t = w.table('sum');
      const v1 = w.currentRing;
      const owner = (k: number) => v1.owner(SHAPE, k);
      await w.wait(t.push(ALL, ONES));
      await w.wait(t.push(ALL, ONES)); // both acknowledged by n2 too: lost with it (no replication here)
      const inFlight = Array.from({ length: 6 }, () => t.push(ALL, ONES));
      const pulling = t.pull(ALL);
      // The failover, as the manager will do it: n2 is gone, the ring without it goes to n1 and n3.
      await c.nodes[1].close();
      const next = v1.withNodes(['n1', 'n3']);
      const install = c.mgr.installRing(next);
      const during = Array.from({ length: 3 }, () => t.push(ALL, ONES)); // still sliced by the old ring
      await install;
      assert.equal(await w.awaitRing(1, 5000), true);
      assert.equal(seed.calls(), 1, 'the ring was pushed, not fetched');
      const after = Array.from({ length: 3 }, () => t.push(ALL, ONES));
      for (const ts of [...inFlight, ...during, ...after]) assert.equal(await w.wait(ts), undefined);
      const total = 2 + inFlight.length + during.length + after.length;

      // The pull in flight reads after the pushes in flight on each connection, n2's keys included.
      const early = (await w.wait(pulling))!;
      for (let k = 0; k < K; k += 7)
        if (owner(k) !== 'n2') assert.equal(early[k], 2 + inFlight.length, `key ${k}`);
        else assert.ok(early[k] >= inFlight.length && early[k] <= total - 2, `key ${k} (n2's): ${early[k]}`);

      const got = (await w.wait(t.pull(ALL)))!;
      let moved = 0;
      for (let k = 0; k < K; k++) {
        // n2 died before any frame in flight reached it: every push but the two it acknowledged
        // reached the new owners of its keys, once.
        const want = owner(k) === 'n2' ? total - 2 : total;
        if (got[k] !== want) assert.fail(`key ${k} of ${owner(k)}: ${got[k]}, want ${want}`);
        if (owner(k) === 'n2') moved++;
      }
      assert.ok(moved > 0);
      // Every push frame of n1 and n3 applied once, plus one piece per new owner of each re-sliced n2 frame.
      const n2part = sliceByNode(v1, SHAPE, ALL).find((p) => p.owner === 'n2')!;
      const newOwners = resliceKeys(next, SHAPE, n2part.keys).map((p) => p.owner);
      const resliced = inFlight.length + during.length;
      assert.equal(tableStats(c, 'n1').pushes + tableStats(c, 'n3').pushes, 2 * total + resliced * newOwners.length);
      assert.equal(tableStats(c, 'n1').duplicates + tableStats(c, 'n3').duplicates, 0);
    } finally {
      w.close();
    }
  });

  it('re-slices a frame refused with NOT_OWNER once it has the newer ring, under the same stamp', async () => {
    const net = new MemoryNetwork({ seed: 33, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    let info = c.mgr.info;
    const sent: Sent[] = [];
    const w = await Worker.connect({
      seed: async () => info,
      dialers: { memory: recordingDialer(net.dialer(), sent, new Map()) },
      workerId: 5,
    });
    try {
      const t = w.table('sum');
      const v1 = w.currentRing;
      const next = v1.withNodes(['n1', 'n3']);
      // n2 leaves the ring but stays up, refusing every key, while the worker is connected to no
      // node (so no node pushes it the ring): it still slices by the old one.
      await c.mgr.installRing(next);
      await callNode(net, 'memory://n2', (id) =>
        encodeJson(MsgType.RING, id, { ring: next.toJSON(), addresses: c!.mgr.info.addresses }),
      );
      info = c.mgr.info; // the seed knows the new ring
      // n2's frame of the push will be stamped (5, 9, 0, 1 << 24 | its index). Its update has
      // reached the new owners already, as chain replication from a dead n2 would have it.
      const parts = sliceByNode(v1, SHAPE, ALL);
      const i2 = parts.findIndex((p) => p.owner === 'n2');
      const stamp: TaskStamp = { worker: w.id, task: 9, attempt: 0, seq: ((1 << 24) | i2) >>> 0 };
      const pieces = resliceKeys(next, SHAPE, parts[i2].keys);
      assert.ok(pieces.length >= 1);
      for (const p of pieces) {
        const ack = await callNode(net, `memory://${p.owner}`, (requestId) =>
          encodePush({
            requestId,
            job: 0,
            table: 1,
            clock: 0,
            task: stamp,
            keys: p.keys,
            values: new Float32Array(p.n).fill(1),
          }),
        );
        assert.equal(ackIsDuplicate(ack), false);
      }

      w.setTask(9, 0);
      const push = t.push(ALL, ONES);
      const pull = t.pull(ALL); // sliced by the old ring too
      assert.equal(await w.wait(push), undefined);
      assert.equal(w.currentRing.version, 2, 'learnt from the seed while the refused frame waited');
      assert.deepEqual((await w.wait(pull))!, ONES, "the pull's refused frame re-sliced, its replies in place");
      assert.deepEqual((await w.wait(t.pull(ALL)))!, ONES, "n2's part applied once");

      const pushes = sent.filter((s) => s.f.type === MsgType.PUSH);
      const refused = pushes.filter((s) => s.to === 'n2');
      assert.equal(refused.length, 1);
      assert.ok(sameStamp(refused[0].f.task, stamp), "n2's frame carried the stamp replicated");
      const again = pushes.filter((s) => s.to !== 'n2' && sameStamp(s.f.task, stamp));
      assert.deepEqual(
        again.map((s) => s.to).sort(),
        pieces.map((p) => p.owner).sort(),
        "one piece per new owner, each under the refused frame's stamp",
      );
      for (const s of again) {
        assert.notEqual(s.f.keys.kind, 'cached');
        assert.deepEqual(keyList(s.f.keys as KvKeys), keyList(pieces.find((p) => p.owner === s.to)!.keys));
      }
      assert.equal(
        tableStats(c, 'n1').duplicates + tableStats(c, 'n3').duplicates,
        pieces.length,
        'each piece acknowledged as a duplicate',
      );

      // A push made under the new ring takes seqs of ring version 2.
      await w.wait(t.push(ALL, ONES));
      const last = sent.filter((s) => s.f.type === MsgType.PUSH).at(-1)!;
      assert.equal(last.f.task!.seq >>> 24, 2);
    } finally {
      w.close();
    }
  });

  it('fails a request with NOT_OWNER when no newer ring turns up', async () => {
    const net = new MemoryNetwork({ seed: 34, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const info = c.mgr.info; // a seed that never learns better
    let asked = 0;
    const w = await Worker.connect({
      seed: async () => {
        asked++;
        return info;
      },
      dialers: { memory: net.dialer() },
    });
    try {
      const v1 = w.currentRing;
      await callNode(net, 'memory://n2', (id) =>
        encodeJson(MsgType.RING, id, { ring: v1.withNodes(['n1', 'n3']).toJSON(), addresses: info.addresses }),
      );
      assert.equal(await codeOf(w.wait(w.table('sum').pull(ALL))), 'TS_ERR_NOT_OWNER');
      assert.equal(w.currentRing.version, 1);
      assert.ok(asked >= 3, `the seed was asked while waiting, and once more (${asked - 1} times)`);
    } finally {
      w.close();
    }
  });

  it('sends a piece refused by a node that has not installed the newer ring yet to that node again', async () => {
    const net = new MemoryNetwork({ seed: 35, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    let info = c.mgr.info;
    const w = await Worker.connect({ seed: async () => info, dialers: { memory: net.dialer() } });
    try {
      await w.connectAll();
      const v1 = w.currentRing;
      const next = v1.withNodes(['n1', 'n3']);
      const install = (node: string) =>
        callNode(net, `memory://${node}`, (id) =>
          encodeJson(MsgType.RING, id, { ring: next.toJSON(), addresses: info.addresses }),
        );
      // The manager's install reaches n1 first: n1 pushes the ring to the worker, which slices
      // the push by it, while n3, to own n2's keys under it, still has the old ring.
      await install('n1');
      assert.equal(await w.awaitRing(1, 2000), true);
      info = { ...info, ring: next.toJSON() };
      const push = w.table('sum').push(ALL, ONES);
      setTimeout(() => void install('n3'), 100);
      assert.equal(await w.wait(push), undefined);
      assert.deepEqual((await w.wait(w.table('sum').pull(ALL)))!, ONES);
    } finally {
      w.close();
    }
  });

  it('subscribes a live subscription again under the new ring, keeping its values and clock', async () => {
    const net = new MemoryNetwork({ seed: 36, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const seed = onceSeed(c);
    const w = await Worker.connect({ seed: seed.seed, dialers: { memory: net.dialer() }, workerId: 7 });
    try {
      const t = w.table('sum');
      const s = t.subscribe(ALL);
      const empty = t.subscribe(new Float64Array(0));
      await w.wait(t.push(ALL, ONES));
      await c.mgr.publish(0, 0);
      const before = Array.from(await s.ready(0));
      assert.deepEqual(
        c.nodes.map((n) => n.stats().publish.subscriptions),
        [1, 1, 1],
      );

      await c.nodes[1].close();
      await c.mgr.installRing(w.currentRing.withNodes(['n1', 'n3']));
      assert.equal(await w.awaitRing(1, 5000), true);
      assert.equal(s.clock, 0, 'the clock stays');
      assert.deepEqual(Array.from(s.values(0)!), before, 'and so do the values in hand');
      // The push, then the publish, go after the new SUBSCRIBEs on each connection.
      await w.wait(t.push(ALL, ONES));
      await c.mgr.publish(0, 1);
      const live = c.nodes.filter((n) => n.id !== 'n2');
      assert.deepEqual(
        live.map((n) => n.stats().publish.subscriptions),
        [1, 1],
        'one subscription per live node',
      );
      assert.deepEqual(await s.ready(1), await w.wait(t.pull(ALL)), "n2's keys published by their new owners");
      assert.equal(s.clock, 1);
      assert.equal((await empty.ready(5)).length, 0);
      s.close();
      await w.wait(t.pull(ALL)); // after the UNSUBSCRIBEs on each connection
      assert.deepEqual(
        live.map((n) => n.stats().publish.subscriptions),
        [0, 0],
      );
    } finally {
      w.close();
    }
  });

  it('redials a live node after a dropped connection and resends to it, under the same stamp', async () => {
    const net = new MemoryNetwork({ seed: 35, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const sent: Sent[] = [];
    const conns = new Map<string, Conn[]>();
    const seed = onceSeed(c);
    const w = await Worker.connect({
      seed: seed.seed,
      dialers: { memory: recordingDialer(net.dialer(), sent, conns) },
      workerId: 6,
    });
    try {
      const t = w.table('sum');
      await w.connectAll();
      w.setTask(11, 0);
      const push = t.push(ALL, ONES);
      const mine = sent.filter((s) => s.f.type === MsgType.PUSH);
      assert.equal(mine.length, 3);
      const toN1 = mine.find((s) => s.to === 'n1')!;
      net.drop(conns.get('memory://n1')![0]); // with n1's frame in flight: it is lost
      assert.equal(await w.wait(push), undefined);
      const again = sent.filter((s) => s.f.type === MsgType.PUSH && sameStamp(s.f.task, toN1.f.task));
      assert.deepEqual(
        again.map((s) => s.to),
        ['n1', 'n1'],
        'resent to n1, over a new connection',
      );
      assert.equal(conns.get('memory://n1')!.length, 2);
      assert.equal(sent.filter((s) => s.f.type === MsgType.PUSH).length, 4, 'nothing re-sliced');
      assert.equal(w.currentRing.version, 1);
      assert.equal(seed.calls(), 1);
      assert.deepEqual((await w.wait(t.pull(ALL)))!, ONES);
    } finally {
      w.close();
    }
  });
});

/** A server node played by the test: it answers nothing, but sends what the test tells it to. */
class PlayedNode implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://n1';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  send(): void {}
  push(body: unknown): void {
    this.onmessage?.(concatParts(encodeJson(MsgType.RING, 0, body)));
  }
  close(): void {
    this.closed = true;
  }
}

describe('a worker receiving RING pushes', () => {
  it('installs a newer ring of known nodes in place, asks the seed about unknown ones, ignores the rest', async () => {
    const node = new PlayedNode();
    const infos: ClusterInfo[] = [
      { ring: new Ring(['n1']).toJSON(), addresses: { n1: { memory: 'memory://n1' } }, tables: [TABLE] },
      {
        ring: new Ring(['n1', 'n9'], { version: 3 }).toJSON(),
        addresses: { n1: { memory: 'memory://n1' }, n9: { memory: 'memory://n9' } },
        tables: [TABLE],
      },
    ];
    let calls = 0;
    const w = await Worker.connect({
      seed: async () => infos[Math.min(calls++, infos.length - 1)],
      dialers: { memory: { kind: 'memory', dial: async () => node } },
    });
    try {
      await w.connectAll();
      const t = w.table('sum');
      node.push({ ring: new Ring(['n1'], { version: 2 }).toJSON() });
      assert.equal(w.currentRing.version, 2, 'installed as it arrived');
      assert.equal(calls, 1);
      assert.equal(w.table('sum'), t);
      node.push({ ring: new Ring(['n1'], { version: 1 }).toJSON() }); // older: ignored
      node.push({ ring: { version: 9 } }); // not a ring: ignored
      node.push({});
      assert.equal(w.currentRing.version, 2);
      node.push({ ring: new Ring(['n1', 'n9'], { version: 3 }).toJSON() }); // n9 has no known address
      assert.equal(w.currentRing.version, 2, 'not installed before the seed answered');
      assert.equal(await w.awaitRing(2, 5000), true);
      assert.equal(calls, 2, 'the seed was asked once');
      assert.deepEqual(w.cluster.addresses.n9, { memory: 'memory://n9' });
      assert.equal(w.table('sum'), t, 'a refresh keeps the handles of tables it leaves as they were');
      await w.refresh(async () => infos[0]);
      assert.equal(w.currentRing.version, 3, 'a seed behind the worker does not take its ring back');
      assert.deepEqual(Object.keys(w.cluster.addresses).sort(), ['n1', 'n9']);
    } finally {
      w.close();
    }
  });
});
