/**
 * The request path's cost in frames: one task of the demo job's shape (a 13k-key shard of a
 * 2^20-key table spread over three nodes with 128 virtual nodes each, plus the audit push) sends
 * at most one PULL and one PUSH per node and table, and the values still land on the right keys.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import { decodeFrame, MsgType } from '../shared/protocol/frame.ts';
import { createRng, randomSortedKeys } from '../shared/rng.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type Conn, concatParts, type Dialer } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

/** Wraps a dialer so every frame sent is counted by (node address, type, table). */
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
