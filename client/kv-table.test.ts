/**
 * The request path's cost in frames: one task of the demo job's shape (a 13k-key shard of a
 * 2^20-key table spread over three nodes with 128 virtual nodes each, plus the audit push) sends
 * at most one PULL and one PUSH per node and table, and the values still land on the right keys.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import type { TabshardError } from '../shared/errors.ts';
import { keyHashReady, keyListHash } from '../shared/key-cache.ts';
import { decodeFrame, MsgType } from '../shared/protocol/frame.ts';
import { encodePush } from '../shared/protocol/kv.ts';
import { createRng, randomSortedKeys } from '../shared/rng.ts';
import { RpcPeer } from '../shared/rpc.ts';
import { sliceByNode } from '../shared/slicing.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type Conn, concatParts, type Dialer } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

/** Wraps a dialer so every frame sent is counted by (node address, type, table), and its key kind by name. */
function countingDialer(inner: Dialer, counts: Map<string, number>): Dialer {
  return {
    kind: inner.kind,
    async dial(address: string): Promise<Conn> {
      const conn = await inner.dial(address);
      const send = conn.send.bind(conn);
      conn.send = (parts, onSent) => {
        const f = decodeFrame(concatParts(parts));
        const key = `${address} ${f.type} ${f.table}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        counts.set(f.keys.kind, (counts.get(f.keys.kind) ?? 0) + 1);
        send(parts, onSent);
      };
      return conn;
    },
  };
}

let c: TestCluster;
const net = new MemoryNetwork({ seed: 3 });
before(async () => {
  c = await testCluster([tableSpec(1, 'weights', 'sparse', 2 ** 20, 1, 'sum'), tableSpec(2, 'audit', 'dense', 192)], {
    net,
    vnodes: 128,
  });
});
after(() => c.close());

test('a task sends at most one PULL and one PUSH per node and table, however many ranges its keys span', async () => {
  await keyHashReady;
  const counts = new Map<string, number>();
  const w = await Worker.connect({ seed: c.seed, dialers: { memory: countingDialer(net.dialer(), counts) } });
  try {
    const keys = randomSortedKeys(createRng(11), 13_000, 2 ** 20);
    const weights = w.table('weights');
    const audit = w.table('audit');
    const ring = w.currentRing;
    const spread = ring.sliceKeys({ id: 1, keySpace: 2 ** 20, valueLength: 1 }, keys).length;
    assert.ok(spread > 100, `the shard spans ${spread} runs of ring ranges`);
    await w.wait(weights.pull(keys)); // dials every node before counting starts
    counts.clear();
    const sent = w.framesSent;

    w.setTask(7, 0);
    const before = (await w.wait(weights.pull(keys)))!;
    const grad = Float32Array.from(keys, (k) => (k % 13) - 6);
    await Promise.all([w.wait(weights.push(keys, grad)), w.wait(audit.push({ begin: 6, end: 7 }, Float32Array.of(1)))]);
    const afterPush = (await w.wait(weights.pull(keys)))!;

    for (let i = 0; i < keys.length; i++) assert.equal(afterPush[i], before[i] + grad[i]);
    const pulls = [...counts].filter(([k]) => k.split(' ')[1] === String(MsgType.PULL));
    const pushes = [...counts].filter(([k]) => k.split(' ')[1] === String(MsgType.PUSH));
    assert.equal(counts.get('cached'), 9, 'every weights frame after the first pull names its keys by hash');
    assert.equal(counts.get('list'), undefined);
    assert.equal(pulls.length, 3, 'every node was asked');
    assert.ok(
      pulls.every(([, n]) => n === 2),
      `two pulls, one frame per node each: ${JSON.stringify(pulls)}`,
    );
    assert.equal(pushes.length, 4, 'three weights frames and one audit frame');
    assert.ok(
      pushes.every(([, n]) => n === 1),
      `one PUSH per node and table: ${JSON.stringify(pushes)}`,
    );
    assert.equal(w.framesSent - sent, 3 + 3 + 1 + 3);
  } finally {
    w.close();
  }
});

test('a key list goes once per connection, then by its hash; a node that lacks it gets it again, applied once', async () => {
  await keyHashReady;
  const counts = new Map<string, number>();
  const w = await Worker.connect({ seed: c.seed, dialers: { memory: countingDialer(net.dialer(), counts) } });
  try {
    const keys = randomSortedKeys(createRng(12), 9000, 2 ** 20);
    const t = w.table('weights');
    await w.connectAll();
    const before = (await w.wait(t.pull(keys)))!;
    assert.equal(counts.get('list'), 3, 'first pull: the lists, flagged to be cached');
    const requested = w.bytes.requested;
    await w.wait(t.pull(keys));
    assert.equal(counts.get('cached'), 3, 'second pull: hashes only');
    assert.ok(
      w.bytes.requested - requested < 3 * 64,
      `a cached pull costs headers only (${w.bytes.requested - requested} B)`,
    );

    // The worker believes a node holds a list it never sent: that node refuses the hash, the
    // worker sends the list in full, and the push is applied exactly once.
    const fresh = randomSortedKeys(createRng(13), 5000, 2 ** 20);
    const parts = sliceByNode(w.currentRing, { id: 1, keySpace: 2 ** 20, valueLength: 1 }, fresh);
    const lone = parts[0];
    assert.equal(lone.keys.kind, 'list');
    const sub = lone.keys.kind === 'list' ? lone.keys.keys : new Float64Array(0); // the keys one node owns
    w.keyCache(lone.owner).add(keyListHash(sub)!, sub.length, true);
    const node = c.nodes.find((n) => n.id === lone.owner)!;
    const errors = node.stats().errors;
    const prior = (await w.wait(t.pull(sub)))!;
    assert.equal(node.stats().errors, errors + 1, 'one TS_ERR_KEYS_NOT_CACHED, then the resend');
    await w.wait(t.push(sub, new Float32Array(sub.length).fill(2)));
    const after = (await w.wait(t.pull(sub)))!;
    for (let i = 0; i < sub.length; i++) assert.equal(after[i], prior[i] + 2);
    assert.ok(before.length === keys.length);
  } finally {
    w.close();
  }
});

test('with compress, a list goes deflated (key kind DEFLATED), is cached all the same, then goes by its hash', async () => {
  await keyHashReady;
  const counts = new Map<string, number>();
  const w = await Worker.connect({ seed: c.seed, dialers: { memory: countingDialer(net.dialer(), counts) } });
  try {
    const keys = randomSortedKeys(createRng(21), 9000, 2 ** 20);
    const t = w.table('weights');
    await w.connectAll();
    const plain = (await w.wait(t.pull(keys)))!;
    const r0 = w.bytes.requested;
    const fresh = randomSortedKeys(createRng(22), 9000, 2 ** 20);
    const got = (await w.wait(t.pull(fresh, { compress: true })))!;
    const deflated = w.bytes.requested - r0;
    assert.equal(counts.get('list'), 6, 'both first pulls decode to lists on the nodes');
    assert.ok(deflated < 9000 * 4 * 0.6, `deflated lists ${deflated} B for 9000 keys (DELTA32: ${9000 * 4} B)`);
    const r1 = w.bytes.requested;
    const again = (await w.wait(t.pull(fresh)))!;
    assert.equal(counts.get('cached'), 3, 'the deflated lists were cached: hashes only');
    assert.ok(w.bytes.requested - r1 < 3 * 64);
    assert.deepEqual(again, got);
    assert.equal(plain.length, keys.length);
  } finally {
    w.close();
  }
});

test('a raw client naming a list it never sent gets TS_ERR_KEYS_NOT_CACHED and changes nothing', async () => {
  const conn = await net.dialer().dial(c.seed);
  const peer = new RpcPeer(conn);
  try {
    const err = await peer
      .call((id) =>
        encodePush({
          requestId: id,
          job: 0,
          table: 1,
          clock: 0,
          task: null,
          keys: { kind: 'cached', hash: 12345n, n: 100 },
          values: new Float32Array(100),
        }),
      )
      .then(
        () => null,
        (e: TabshardError) => e.code,
      );
    assert.equal(err, 'TS_ERR_KEYS_NOT_CACHED');
  } finally {
    peer.close();
  }
});
