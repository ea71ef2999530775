/**
 * RangeClock against a naive per-key reference (every key its own vector), the paper's split
 * bound, minimality of the segmentation, and argument validation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RangeClock } from './clock.ts';
import { TabshardError } from './errors.ts';
import { createRng } from './rng.ts';

const invalid = (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT';

/** Per-key vectors, flat: ref[k * n + node]. */
class NaiveClock {
  readonly ts: Int32Array;
  constructor(
    readonly K: number,
    readonly n: number,
  ) {
    this.ts = new Int32Array(K * n);
  }
  set(b: number, e: number, node: number, t: number): void {
    for (let k = b; k < e; k++) this.ts[k * this.n + node] = t;
  }
  min(b: number, e: number, node: number): number {
    let m = Infinity;
    for (let k = b; k < e; k++) m = Math.min(m, this.ts[k * this.n + node]);
    return m;
  }
  /** Number of maximal runs of keys with equal vectors: the minimal segment count. */
  runs(): number {
    let runs = 1;
    for (let k = 1; k < this.K; k++) {
      for (let i = 0; i < this.n; i++) {
        if (this.ts[k * this.n + i] !== this.ts[(k - 1) * this.n + i]) {
          runs++;
          break;
        }
      }
    }
    return runs;
  }
}

function assertSame(clock: RangeClock, ref: NaiveClock): void {
  const segs = clock.segments();
  assert.equal(segs.length, clock.segmentCount);
  assert.equal(clock.segmentCount, ref.runs(), 'segmentation is minimal');
  assert.equal(segs[0].begin, 0);
  assert.equal(segs[segs.length - 1].end, ref.K);
  for (let s = 0; s < segs.length; s++) {
    if (s > 0) assert.equal(segs[s].begin, segs[s - 1].end);
    for (let k = segs[s].begin; k < segs[s].end; k++) {
      assert.deepEqual(segs[s].clock, Array.from(ref.ts.subarray(k * ref.n, (k + 1) * ref.n)), `key ${k}`);
    }
  }
}

test('fresh clock: one segment of zeros', () => {
  const c = new RangeClock(100, 3);
  assert.equal(c.segmentCount, 1);
  assert.deepEqual(c.segments(), [{ begin: 0, end: 100, clock: [0, 0, 0] }]);
  assert.deepEqual(c.get(42), Int32Array.of(0, 0, 0));
  assert.equal(c.minAll(0, 100), 0);
});

test('paper §4.1: a set inside one segment turns it into at most 3 segments', () => {
  const rng = createRng(11);
  for (let trial = 0; trial < 200; trial++) {
    const c = new RangeClock(1000, 2);
    c.set(100, 900, 0, 1); // segments [0,100) [100,900) [900,1000)
    const b = 100 + rng.int(800);
    const e = b + 1 + rng.int(900 - b);
    c.set(b, e, 1, 5 + rng.int(3));
    const inside = c.segments().filter((s) => s.begin >= 100 && s.end <= 900);
    assert.ok(inside.length >= 1 && inside.length <= 3, `${inside.length} pieces`);
    assert.equal(inside.length, 1 + (b > 100 ? 1 : 0) + (e < 900 ? 1 : 0));
    assert.ok(c.segmentCount <= 5);
  }
});

test('merging: undoing a set restores a single segment', () => {
  const c = new RangeClock(64, 2);
  c.set(10, 20, 0, 3);
  c.set(30, 40, 0, 3);
  assert.equal(c.segmentCount, 5);
  c.set(20, 30, 0, 3); // bridges the two: [10, 40) is one segment
  assert.deepEqual(
    c.segments().map((s) => [s.begin, s.end]),
    [
      [0, 10],
      [10, 40],
      [40, 64],
    ],
  );
  c.set(10, 40, 0, 0);
  assert.equal(c.segmentCount, 1);
  c.set(0, 64, 1, 9);
  assert.equal(c.segmentCount, 1);
  assert.equal(c.get(63, 1), 9);
  assert.equal(c.min(0, 64, 0), 0);
  assert.equal(c.minAll(0, 64), 0);
});

test('seeded random set sequences agree with a per-key reference', () => {
  const K = 64;
  const n = 3;
  const op = fc.record({
    b: fc.integer({ min: 0, max: K - 1 }),
    len: fc.integer({ min: 1, max: K }),
    node: fc.integer({ min: 0, max: n - 1 }),
    t: fc.integer({ min: 0, max: 4 }),
  });
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 1, maxLength: 80 }),
      fc.array(fc.nat({ max: K * K }), { maxLength: 10 }),
      (ops, probes) => {
        const clock = new RangeClock(K, n);
        const ref = new NaiveClock(K, n);
        for (const { b, len, node, t } of ops) {
          const e = Math.min(K, b + len);
          clock.set(b, e, node, t);
          ref.set(b, e, node, t);
        }
        assertSame(clock, ref);
        for (const p of probes) {
          const b = p % K;
          const e = b + 1 + (Math.floor(p / K) % (K - b));
          for (let node = 0; node < n; node++) assert.equal(clock.min(b, e, node), ref.min(b, e, node));
          assert.equal(clock.minAll(b, e), Math.min(ref.min(b, e, 0), ref.min(b, e, 1), ref.min(b, e, 2)));
          assert.equal(clock.get(b, 1), ref.ts[b * n + 1]);
        }
      },
    ),
    { seed: 20140606, numRuns: 300 },
  );
});

test('large key spaces: bounded delay over a few worker clocks', () => {
  const K = 2 ** 52;
  const c = new RangeClock(K, 2);
  c.set(0, K, 0, 7);
  c.set(2 ** 40, 2 ** 41, 1, 6);
  assert.equal(c.minAll(0, K), 0);
  assert.equal(c.minAll(2 ** 40, 2 ** 41), 6);
  assert.equal(c.minAll(2 ** 40 + 5, 2 ** 40 + 6), 6);
  assert.equal(c.min(0, K, 0), 7);
  assert.equal(c.segmentCount, 3);
  assert.deepEqual(c.get(K - 1), Int32Array.of(7, 0));
});

test('bad arguments throw TS_ERR_INVALID_ARGUMENT', () => {
  assert.throws(() => new RangeClock(0, 1), invalid);
  assert.throws(() => new RangeClock(2 ** 52 + 1, 1), invalid);
  assert.throws(() => new RangeClock(10, 0), invalid);
  assert.throws(() => new RangeClock(10, 1.5), invalid);
  const c = new RangeClock(10, 2);
  assert.throws(() => c.set(5, 5, 0, 1), invalid); // empty range
  assert.throws(() => c.set(6, 5, 0, 1), invalid);
  assert.throws(() => c.set(0, 11, 0, 1), invalid);
  assert.throws(() => c.set(-1, 3, 0, 1), invalid);
  assert.throws(() => c.set(0.5, 3, 0, 1), invalid);
  assert.throws(() => c.set(0, Number.NaN, 0, 1), invalid);
  assert.throws(() => c.set(0, 3, 2, 1), invalid);
  assert.throws(() => c.set(0, 3, 0, -1), invalid);
  assert.throws(() => c.set(0, 3, 0, 2 ** 31), invalid);
  assert.throws(() => c.set(0, 3, 0, 1.5), invalid);
  assert.throws(() => c.min(3, 3, 0), invalid);
  assert.throws(() => c.minAll(0, 11), invalid);
  assert.throws(() => c.get(3, 2), invalid);
  assert.throws(
    () => c.get(10),
    (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_KEY_OUT_OF_RANGE',
  );
  assert.equal(c.segmentCount, 1, 'failed calls change nothing');
});
