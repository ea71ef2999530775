/**
 * A table's check of pushed values: finite first (TS_ERR_NON_FINITE), then the spec's bounds
 * (TS_ERR_PUSH_BOUND: largest |v|, L2 norm of the frame), a refused push changing nothing and
 * counted as `bounded`; directly on Table and over the wire through a node and a worker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { TaskStamp } from '../../shared/protocol/frame.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import { Ring } from '../../shared/ring.ts';
import { createRng } from '../../shared/rng.ts';
import type { PushBounds, TableSpec } from '../../shared/table.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { codeOf } from '../scheduler/testkit.ts';
import { scanValues, Table } from './table.ts';
import { tableSpec, testCluster } from './testkit.ts';

const spec = (kind: 'dense' | 'sparse', bounds?: PushBounds, valueLength = 1): TableSpec => ({
  ...tableSpec(1, kind, kind, 1000, valueLength),
  ...(bounds ? { bounds } : {}),
});

const list = (...k: number[]): KvKeys => ({ kind: 'list', keys: Float64Array.from(k) });
const all = (t: Table) => Array.from(t.pull({ kind: 'range', begin: 0, end: 8 }).parts.flatMap((p) => Array.from(p)));

/** The code and message of what `f` throws. */
function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof TabshardError);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected a refusal');
}

const stamp = (seq: number): TaskStamp => ({ worker: 1, task: 5, attempt: 0, seq });

describe('push bounds on a table', () => {
  for (const kind of ['dense', 'sparse'] as const) {
    it(`${kind}: applies pushes within the bounds, bounds included`, () => {
      const t = new Table(spec(kind, { value: 12, norm: 15 }));
      assert.equal(t.push(list(1, 2), Float32Array.of(3, -4), null), true);
      // |v| = 12 and norm = 15 exactly are allowed (9² + 12² = 15²).
      assert.equal(t.push({ kind: 'range', begin: 0, end: 3 }, Float32Array.of(-10, 9, 0), null), true);
      assert.equal(t.push(list(3, 4), Float32Array.of(9, -12), null), true);
      assert.deepEqual(all(t), [-10, 12, -4, 9, -12, 0, 0, 0]);
      assert.deepEqual([t.stats().pushes, t.stats().bounded], [3, 0]);
    });

    it(`${kind}: refuses a push over the value bound, changing nothing, and counts it`, () => {
      const t = new Table(spec(kind, { value: 10, norm: 1000 }));
      t.push(list(1, 2, 3), Float32Array.of(1, 2, 3), null);
      const before = all(t);
      const r = refusal(() => t.push(list(1, 2, 3), Float32Array.of(1, -10.5, 3), stamp(1)));
      assert.equal(r.code, 'TS_ERR_PUSH_BOUND');
      assert.match(r.message, /value bound 10: \|value 1\| is 10\.5/);
      assert.deepEqual(all(t), before);
      assert.deepEqual([t.steps, t.stats().pushes, t.stats().bounded, t.stats().duplicates], [1, 1, 1, 0]);
      // Nothing was recorded either: the same stamp with honest values is applied, not a duplicate.
      assert.equal(t.push(list(1, 2, 3), Float32Array.of(1, 1, 1), stamp(1)), true);
      assert.deepEqual(all(t).slice(0, 4), [0, 2, 3, 4]);
    });

    it(`${kind}: refuses a push over the norm bound (every value within the value bound)`, () => {
      const t = new Table(spec(kind, { value: 10, norm: 15 }));
      const r = refusal(() => t.push({ kind: 'range', begin: 0, end: 3 }, Float32Array.of(9, -9, 9), null));
      assert.equal(r.code, 'TS_ERR_PUSH_BOUND');
      assert.match(r.message, /norm bound 15: the L2 norm of 3 values is 15\.58/);
      assert.deepEqual(all(t), [0, 0, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual([t.steps, t.stats().pushes, t.stats().bounded], [0, 0, 1]);
      assert.equal(t.stats().keys === 0 || kind === 'dense', true, 'a sparse table stored no key');
    });

    it(`${kind}: checks finiteness first, then the value bound, then the norm`, () => {
      const t = new Table(spec(kind, { value: 10, norm: 15 }));
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e39]) {
        const r = refusal(() => t.push(list(1, 2, 3), Float32Array.of(100, bad, 100), null));
        assert.equal(r.code, 'TS_ERR_NON_FINITE');
        assert.match(r.message, /value 1 is/);
      }
      assert.equal(t.stats().bounded, 0, 'a non-finite push is not a bounded one');
      // Over both bounds: the value bound is named.
      assert.match(refusal(() => t.push(list(1, 2), Float32Array.of(100, 100), null)).message, /value bound 10/);
      assert.equal(t.stats().bounded, 1);
    });

    it(`${kind}: with no bounds, any finite push is applied as before`, () => {
      const t = new Table(spec(kind));
      assert.equal(t.push(list(1, 2), Float32Array.of(3e38, -3e38), null), true);
      assert.deepEqual(all(t).slice(1, 3), [Math.fround(3e38), Math.fround(-3e38)]);
      assert.equal(refusal(() => t.push(list(1), Float32Array.of(Number.NaN), null)).code, 'TS_ERR_NON_FINITE');
      assert.deepEqual([t.stats().pushes, t.stats().bounded], [1, 0]);
    });
  }

  it('bounds a whole frame of vector rows (valueLength 4): the norm is over all its floats', () => {
    const t = new Table(spec('sparse', { value: 1, norm: 2 }, 4));
    assert.equal(t.push(list(1), Float32Array.of(1, 1, 1, 1), null), true); // norm 2
    assert.equal(refusal(() => t.push(list(1, 2), new Float32Array(8).fill(0.75), null)).code, 'TS_ERR_PUSH_BOUND');
    assert.equal(t.stats().bounded, 1);
  });
});

describe('scanValues', () => {
  const scan = (v: Float32Array) => {
    const out = new Float64Array(2);
    scanValues(v, out);
    return out;
  };

  it('gives Σv² in float64 and max |v| for every length (tails included)', () => {
    const rng = createRng(3);
    for (let n = 0; n < 40; n++) {
      const v = Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 ** rng.int(20));
      let sq = 0;
      let max = 0;
      for (const x of v) {
        sq += x * x;
        max = Math.max(max, Math.abs(x));
      }
      const [s, m] = scan(v);
      assert.ok(Math.abs(s - sq) <= 1e-12 * sq, `n ${n}`);
      assert.equal(m, max, `n ${n}`);
    }
    assert.deepEqual(
      Array.from(scan(Float32Array.of(0, -7, 0, 0, 0))),
      [49, 7],
      'the largest is negative, in the tail',
    );
  });

  it('is finite exactly when every value is, even for the largest float32 values', () => {
    const big = new Float32Array(1 << 16).fill(-3.4e38);
    assert.ok(Number.isFinite(scan(big)[0]));
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      for (const at of [0, 5, 6, 7, 9]) {
        const v = new Float32Array(10).fill(1);
        v[at] = bad;
        assert.ok(!Number.isFinite(scan(v)[0]), `${bad} at ${at}`);
      }
  });
});

describe('push bounds through a server node', () => {
  it('carries the bounds to nodes and workers, refuses a push over them with TS_ERR_PUSH_BOUND, counts it in STATS', async () => {
    const net = new MemoryNetwork({ seed: 4 });
    const bounded = { ...tableSpec(1, 'w', 'sparse', 2 ** 20), bounds: { value: 5, norm: 6 } };
    const c = await testCluster([bounded, tableSpec(2, 'free', 'sparse', 2 ** 20)], { net });
    const w = await Worker.connect({ seed: c.seed, dialers: { memory: net.dialer() }, workerId: 1 });
    try {
      const t = w.table('w');
      assert.deepEqual(t.spec.bounds, { value: 5, norm: 6 }, 'the worker got the bounds in the RING reply');
      const ring = Ring.fromJSON(w.cluster.ring);
      const shape = { id: 1, keySpace: 2 ** 20, valueLength: 1 };
      const keys = Float64Array.of(40, 41);
      const owner = ring.owner(shape, 40);
      assert.equal(ring.owner(shape, 41), owner, 'one frame');
      await w.wait(t.push(keys, Float32Array.of(3, 4)));
      assert.equal(await codeOf(w.wait(t.push(keys, Float32Array.of(3e6, 4)))), 'TS_ERR_PUSH_BOUND');
      assert.equal(await codeOf(w.wait(t.push(keys, Float32Array.of(-4.5, 4.5)))), 'TS_ERR_PUSH_BOUND');
      assert.deepEqual(Array.from((await w.wait(t.pull(keys)))!), [3, 4]);
      await w.wait(w.table('free').push(keys, Float32Array.of(3e6, 4)));
      const stats = c.nodes.find((n) => n.id === owner)!.stats().tables;
      assert.deepEqual(
        stats.map((s) => [s.name, s.pushes, s.bounded]),
        [
          ['w', 1, 2],
          ['free', 1, 0],
        ],
      );
    } finally {
      w.close();
      await c.close();
    }
  });
});
