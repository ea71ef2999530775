/**
 * Server nodes + manager + worker library on the seeded in-memory network: slicing across three
 * nodes, reassembly, every updater wired through, at-most-once pushes under dropped
 * connections, and coded errors for bad requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { Ring } from '../../shared/ring.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import type { TableSpec } from '../../shared/table.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { codeOf } from '../scheduler/testkit.ts';
import { tableSpec, testCluster } from './testkit.ts';

const spec = tableSpec;

const cluster = (net: MemoryNetwork, tables: TableSpec[]) => testCluster(tables, { net });

const code = codeOf;

describe('cluster of three server nodes (memory network)', () => {
  const net = new MemoryNetwork({ seed: 11, maxDelay: 5 });
  let w: Worker;
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster(net, [
      spec(1, 'dense', 'dense', 1 << 20),
      spec(2, 'sparse', 'sparse', 2 ** 40),
      spec(3, 'emb', 'sparse', 2 ** 30, 8),
      spec(4, 'adam', 'dense', 5000, 1, 'adam', { lr: 0.01 }),
    ]);
    w = await Worker.connect({ seed: 'memory://n1', dialers: { memory: net.dialer() }, workerId: 1 });
  });
  after(async () => {
    w.close();
    c.mgr.close();
    await Promise.all(c.nodes.map((n) => n.close()));
  });

  it('sums pushes of a dense range sliced over all three nodes and pulls them back, one frame per node', async () => {
    const t = w.table('dense');
    const n = 1 << 20;
    const g = Float32Array.from({ length: n }, (_, i) => i % 7);
    await w.wait(t.push({ begin: 0, end: n }, g));
    await w.wait(t.push({ begin: 0, end: n }, g));
    const got = (await w.wait(t.pull({ begin: 0, end: n })))!;
    for (let i = 0; i < n; i += 997) assert.equal(got[i], 2 * (i % 7));
    const slices = w.currentRing.sliceRange({ id: 1, keySpace: n, valueLength: 1 }, 0, n);
    for (const node of c.nodes) {
      const mine = slices.filter((s) => s.owner === node.id).length;
      assert.ok(mine > 0, `${node.id} owns part of the range`);
      assert.equal(
        node.stats().tables.find((s) => s.name === 'dense')!.pushes,
        2,
        `${node.id} applied each push once, all ${mine} of its ranges in one frame`,
      );
    }
  });

  it('matches a reference model for random sparse pushes with vector values (d = 8)', async () => {
    const rng = createRng(5);
    const t = w.table('emb');
    const model = new Map<number, number>();
    for (let r = 0; r < 20; r++) {
      const keys = randomSortedKeys(rng, 1 + rng.int(3000), 2 ** 30);
      const vals = Float32Array.from({ length: keys.length * 8 }, () => rng.int(5));
      keys.forEach((k, i) => {
        for (let j = 0; j < 8; j++) model.set(k * 8 + j, (model.get(k * 8 + j) ?? 0) + vals[i * 8 + j]);
      });
      await w.wait(t.push(keys, vals));
    }
    const all = Float64Array.from(new Set([...model.keys()].map((x) => Math.floor(x / 8)))).sort();
    const probe = Float64Array.from(
      [...all.subarray(0, 2000), 3, 2 ** 30 - 1].sort((a, b) => a - b).filter((x, i, a) => i === 0 || x !== a[i - 1]),
    );
    const got = (await w.wait(t.pull(probe)))!;
    probe.forEach((k, i) => {
      for (let j = 0; j < 8; j++) assert.equal(got[i * 8 + j], model.get(k * 8 + j) ?? 0, `key ${k}[${j}]`);
    });
  });

  it('runs a server-side updater (adam moves weights against the gradient)', async () => {
    const t = w.table('adam');
    await w.wait(t.push({ begin: 0, end: 5000 }, new Float32Array(5000).fill(1)));
    const v = (await w.wait(t.pull({ begin: 0, end: 5000 })))!;
    assert.ok(Math.abs(v[0] + 0.01) < 1e-4, `first adam step is -lr, got ${v[0]}`);
  });

  it('orders a push after a pull it depends on (ps-lite dependency)', async () => {
    const t = w.table('sparse');
    const keys = Float64Array.of(10, 20);
    const ts1 = t.pull(keys);
    const ts2 = t.push(keys, Float32Array.of(1, 1), { after: ts1 });
    assert.deepEqual(Array.from((await w.wait(ts1))!), [0, 0]);
    await w.wait(ts2);
    assert.deepEqual(Array.from((await w.wait(t.pull(keys)))!), [1, 1]);
  });

  it('answers bad requests with stable codes and keeps serving', async () => {
    const t = w.table('sparse');
    assert.throws(() => t.push(Float64Array.of(2, 1), Float32Array.of(1, 1)), { code: 'TS_ERR_KEYS_UNSORTED' });
    assert.throws(() => t.push(Float64Array.of(1), Float32Array.of(1, 1)), { code: 'TS_ERR_VALUE_LENGTH' });
    assert.throws(() => w.table('nope'), { code: 'TS_ERR_UNKNOWN_TABLE' });
    assert.equal(await code(w.wait(12345)), 'TS_ERR_UNKNOWN_TIMESTAMP');
    assert.equal(await code(c.mgr.defineTable({ ...spec(2, 'sparse', 'dense', 10) })), 'TS_ERR_TABLE_EXISTS');
    assert.equal(await code(c.mgr.defineTable({ ...spec(9, 'x', 'dense', 10, 1, 'nope') })), 'TS_ERR_UNKNOWN_UPDATER');
    assert.deepEqual(Array.from((await w.wait(t.pull(Float64Array.of(10))))!), [1]);
  });

  it('refuses a push with a NaN or infinite value (TS_ERR_NON_FINITE) and changes nothing', async () => {
    const ring = Ring.fromJSON(w.cluster.ring);
    for (const name of ['sparse', 'dense']) {
      const t = w.table(name);
      const shape = { id: t.spec.id, keySpace: t.spec.keySpace, valueLength: 1 };
      // Three keys of one node (each node refuses its own slice of a push).
      const owner = ring.owner(shape, 40);
      const keys = Float64Array.of(40, 41, 42);
      assert.deepEqual(
        [41, 42].map((k) => ring.owner(shape, k)),
        [owner, owner],
      );
      await w.wait(t.push(keys, Float32Array.of(1, 2, 3)));
      const before = Array.from((await w.wait(t.pull(keys)))!);
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e39 /* inf as f32 */]) {
        assert.equal(await code(w.wait(t.push(keys, Float32Array.of(5, bad, 5)))), 'TS_ERR_NON_FINITE', name);
        assert.equal(await code(w.wait(t.push({ begin: 40, end: 42 }, Float32Array.of(bad, 5)))), 'TS_ERR_NON_FINITE');
      }
      assert.deepEqual(Array.from((await w.wait(t.pull(keys)))!), before, name);
    }
  });

  it('refuses pushes from a fenced (dead) attempt and applies a task push once across attempts', async () => {
    const t = w.table('sparse');
    const keys = Float64Array.of(7);
    w.setTask(99, 0);
    await w.wait(t.push(keys, Float32Array.of(5)));
    w.setTask(99, 1); // the task re-run by a new lease pushes the same (task, seq) again
    await w.wait(t.push(keys, Float32Array.of(5)));
    assert.deepEqual(Array.from((await w.wait(t.pull(keys)))!), [5]);
    await c.mgr.fence(0, 2, 99, 2);
    w.setTask(99, 1);
    assert.equal(await code(w.wait(t.push(keys, Float32Array.of(5)))), 'TS_ERR_LEASE_EXPIRED');
    w.setTask(0, 0); // back to ad-hoc pushes: their seqs continue, so they are not taken for resends
    await w.wait(t.push(keys, Float32Array.of(1)));
    assert.deepEqual(Array.from((await w.wait(t.pull(keys)))!), [6]);
  });
});

describe('at-most-once pushes over a network that drops connections', () => {
  it('applies every push exactly once although slices are resent after drops', async () => {
    const net = new MemoryNetwork({ seed: 21, maxDelay: 3 });
    const c = await cluster(net, [spec(1, 'sparse', 'sparse', 2 ** 40)]);
    const w = await Worker.connect({
      seed: 'memory://n1',
      dialers: { memory: net.dialer() },
      workerId: 7,
      retries: 50,
    });
    net.dropRate = 0.05;
    const rng = createRng(8);
    const model = new Map<number, number>();
    const t = w.table('sparse');
    for (let r = 0; r < 60; r++) {
      const keys = randomSortedKeys(rng, 1 + rng.int(200), 2 ** 40);
      const vals = Float32Array.from({ length: keys.length }, () => 1 + rng.int(3));
      keys.forEach((k, i) => {
        model.set(k, (model.get(k) ?? 0) + vals[i]);
      });
      await w.wait(t.push(keys, vals));
    }
    net.dropRate = 0;
    const keys = Float64Array.from(model.keys()).sort();
    const got = (await w.wait(t.pull(keys)))!;
    keys.forEach((k, i) => {
      assert.equal(got[i], model.get(k), `key ${k}`);
    });
    const stats = c.nodes.flatMap((n) => n.stats().tables);
    assert.ok(stats.reduce((a, s) => a + s.duplicates, 0) > 0, 'some resends were recognised as duplicates');
    w.close();
    c.mgr.close();
    await Promise.all(c.nodes.map((n) => n.close()));
  });
});
