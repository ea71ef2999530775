/**
 * Table rows (rows.ts): copying a table through exportRange / rows + writeRows carries values and
 * updater state, so the copy then evolves bit for bit like the original under the same pushes;
 * dropRange returns keys to their initial value and state; writeRows checks its length and
 * respects the copy-on-write of lent dense pages. Dense tables here span several pages (d = 3,
 * so a page edge falls inside a key), sparse ones several blocks. Every input is seeded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import { createRng, type Rng, randomSortedKeys } from '../../shared/rng.ts';
import type { Initializer, TableSpec } from '../../shared/table.ts';
import { createUpdater } from '../updaters/index.ts';
import { PAGE_FLOATS } from './dense-store.ts';
import { BLOCK_KEYS } from './sparse-store.ts';
import { Table } from './table.ts';

const UPDATERS: Array<[string, Record<string, number>]> = [
  ['sum', {}],
  ['sgd', { lr: 0.1 }],
  ['adagrad', { lr: 0.1 }],
  ['ftrl', { alpha: 0.1, l1: 0.1 }],
  ['adam', { lr: 0.01 }],
];
const DENSE_K = 400_000; // 1.2M floats: pages 0..4 (the last one partial)
const DENSE_D = 3; // PAGE_FLOATS / 3 is not an integer: key 87381 straddles pages 0 and 1
const PAGE_KEYS = PAGE_FLOATS / DENSE_D;
const SPARSE_K = 2 ** 40;
const SPARSE_D = 2;

interface Push {
  keys: KvKeys;
  grad: Float32Array;
}

function spec(kind: 'dense' | 'sparse', updater: string, params: TableSpec['params'], init: Initializer): TableSpec {
  const keySpace = kind === 'dense' ? DENSE_K : SPARSE_K;
  const valueLength = kind === 'dense' ? DENSE_D : SPARSE_D;
  return { job: 0, id: 1, name: 't', kind, keySpace, valueLength, updater, params, init };
}

const range = (begin: number, end: number): KvKeys => ({ kind: 'range', begin, end });
const list = (keys: Float64Array): KvKeys => ({ kind: 'list', keys });
const countOf = (k: KvKeys) => (k.kind === 'range' ? k.end - k.begin : k.kind === 'list' ? k.keys.length : 0);

function push(rng: Rng, keys: KvKeys, n: number, d: number): Push {
  return { keys, grad: Float32Array.from({ length: n * d }, () => 2 * rng.next() - 1) };
}

function apply(t: Table, pushes: readonly Push[]): void {
  for (const p of pushes) t.push(p.keys, p.grad, null);
}

/** The values of `keys` as one array (pull parts concatenated, loans released). */
function pullAll(t: Table, keys: KvKeys): Float32Array {
  const r = t.pull(keys);
  const out = new Float32Array(r.parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of r.parts) {
    out.set(p, at);
    at += p.length;
  }
  r.release?.();
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return -2;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  const i = sameBits(a, b);
  if (i === -2) assert.fail(`${what}: lengths ${a.length} and ${b.length}`);
  if (i >= 0) assert.fail(`${what}: float ${i} is ${a[i]}, expected ${b[i]}`);
}

/** Seeded pushes: before the copy and after it, plus the keys to compare (all touched, some never). */
function densePlan(rng: Rng): { before: Push[]; after: Push[]; probe: KvKeys } {
  const d = DENSE_D;
  const page3 = Float64Array.from(randomSortedKeys(rng, 3000, PAGE_KEYS), (k) => k + Math.ceil(3 * PAGE_KEYS));
  const before = [
    push(rng, range(80_000, 95_000), 15_000, d), // across the edge of pages 0 and 1
    push(rng, range(0, 20_000), 20_000, d),
    push(rng, list(page3), page3.length, d),
    push(rng, { kind: 'ranges', bounds: Float64Array.of(85_000, 86_000, 90_000, 91_000) }, 2000, d),
    push(rng, range(87_370, 87_390), 20, d), // the straddling key again
  ];
  // Page 2 is untouched before the copy (so it is not exported); the second phase touches it.
  const page2 = Float64Array.from(randomSortedKeys(rng, 500, PAGE_KEYS), (k) => k + Math.ceil(2 * PAGE_KEYS));
  const after = [
    push(rng, range(10_000, 90_000), 80_000, d),
    push(rng, list(page3.filter((_, i) => i % 2 === 0)), Math.ceil(page3.length / 2), d),
    push(rng, list(page2), page2.length, d),
    push(rng, range(0, 20_000), 20_000, d),
  ];
  return { before, after, probe: range(0, DENSE_K) };
}

function sparsePlan(rng: Rng): { before: Push[]; after: Push[]; probe: KvKeys; stored: Float64Array } {
  const d = SPARSE_D;
  const k1 = randomSortedKeys(rng, 20_000, SPARSE_K);
  const k2 = randomSortedKeys(rng, 15_000, SPARSE_K);
  const third = k1.filter((_, i) => i % 3 === 0);
  const before = [
    push(rng, list(k1), k1.length, d),
    push(rng, list(k1), k1.length, d),
    push(rng, list(k2), k2.length, d),
    push(rng, list(third), third.length, d),
  ];
  const fresh = randomSortedKeys(rng, 5000, SPARSE_K);
  const mixed = Float64Array.from(new Set([...k1.subarray(5000, 10_000), ...fresh])).sort();
  const after = [push(rng, list(mixed), mixed.length, d), push(rng, list(k2), k2.length, d)];
  const stored = Float64Array.from(new Set([...k1, ...k2])).sort();
  const never = randomSortedKeys(rng, 100, SPARSE_K);
  const probe = list(Float64Array.from(new Set([...stored, ...fresh, ...never])).sort());
  return { before, after, probe, stored };
}

/** Rows of `keys` with A's values and every state slot at its initial value: a values-only copy. */
function valuesOnly(a: Table, keys: KvKeys, stateInit: readonly number[]): Float32Array {
  const rows = a.rows(keys);
  const nd = countOf(keys) * a.spec.valueLength;
  stateInit.forEach((v, s) => {
    rows.fill(v, (1 + s) * nd, (2 + s) * nd);
  });
  return rows;
}

describe('table rows carry values and updater state', () => {
  const init: Initializer = { kind: 'uniform', scale: 0.1, seed: 3 };
  for (const kind of ['dense', 'sparse'] as const) {
    for (const [name, params] of UPDATERS) {
      it(`${kind} ${name}: copies by exportRange and by rows evolve bit for bit like the original`, () => {
        const rng = createRng(kind === 'dense' ? 101 : 202);
        const plan = kind === 'dense' ? densePlan(rng) : sparsePlan(rng);
        const s = spec(kind, name, params, init);
        const K = s.keySpace;
        const a = new Table(s);
        apply(a, plan.before);

        const exported = new Table(s);
        const chunks = a.exportRange(0, K, kind === 'dense' ? 50_000 : 7000);
        assert.ok(chunks.length > 2, `${chunks.length} chunks`);
        for (const c of chunks) {
          assert.ok(countOf(c.keys) <= (kind === 'dense' ? 50_000 : 7000));
          assert.equal(c.keys.kind, kind === 'dense' ? 'range' : 'list');
          exported.writeRows(c.keys, c.rows);
        }
        assert.equal(exported.stats().keys, a.stats().keys, 'the copy holds what the original holds');
        if (kind === 'dense') {
          const page2 = Math.ceil(2.5 * PAGE_KEYS);
          assert.ok(
            chunks.every((c) => c.keys.kind === 'range' && (c.keys.end <= page2 || c.keys.begin > page2)),
            'the unallocated page 2 is not exported',
          );
        } else assert.equal(exported.stats().keys, (plan as ReturnType<typeof sparsePlan>).stored.length);

        const byRows = new Table(s);
        if (kind === 'dense') {
          // One piece of each key kind; the list holds the key cut by the edge of pages 0 and 1.
          const pieces: KvKeys[] = [
            range(0, 87_000),
            list(Float64Array.from({ length: 1000 }, (_, i) => 87_000 + i)),
            { kind: 'ranges', bounds: Float64Array.of(88_000, 200_000, 200_000, DENSE_K) },
          ];
          for (const p of pieces) byRows.writeRows(p, a.rows(p));
        } else {
          // Odd keys first as garbage, then the even ones (inserted in between), then the odd ones
          // for real (overwritten at scattered positions).
          const stored = (plan as ReturnType<typeof sparsePlan>).stored;
          const odd = list(stored.filter((_, i) => i % 2 === 1));
          const even = list(stored.filter((_, i) => i % 2 === 0));
          byRows.writeRows(odd, new Float32Array(a.rows(odd).length).fill(7));
          byRows.writeRows(even, a.rows(even));
          byRows.writeRows(odd, a.rows(odd));
          assert.equal(byRows.stats().keys, stored.length);
        }

        for (const b of [exported, byRows]) {
          assertSameBits(b.rows(plan.probe), a.rows(plan.probe), 'rows right after the copy');
          b.advanceSteps(a.steps);
          assert.equal(b.steps, a.steps);
        }
        const updater = createUpdater(name, params);
        const partial = new Table(s); // values only: the updater state starts afresh
        partial.writeRows(plan.probe, valuesOnly(a, plan.probe, updater.stateInit));
        partial.advanceSteps(a.steps);
        const noSteps = new Table(s); // everything but the step counter
        for (const c of chunks) noSteps.writeRows(c.keys, c.rows);

        for (const t of [a, exported, byRows, partial, noSteps]) apply(t, plan.after);
        const want = pullAll(a, plan.probe);
        assertSameBits(pullAll(exported, plan.probe), want, 'exportRange copy after more pushes');
        assertSameBits(pullAll(byRows, plan.probe), want, 'rows copy after more pushes');
        assertSameBits(exported.rows(plan.probe), a.rows(plan.probe), 'rows (with state) after more pushes');
        const partialSame = sameBits(pullAll(partial, plan.probe), want) === -1;
        if (updater.stateSlots === 0) assert.ok(partialSame, `${name} has no state: values are everything`);
        else assert.ok(!partialSame, `a values-only copy of ${name} diverges (the state mattered)`);
        const noStepsSame = sameBits(pullAll(noSteps, plan.probe), want) === -1;
        assert.equal(noStepsSame, name !== 'adam', 'only adam depends on the step counter');
      });
    }
  }
});

describe('table rows: layout, dropRange, length check, copy-on-write', () => {
  it('lays rows out slot-major: values, then each state slot; unstored keys read as initial', () => {
    const half: Initializer = { kind: 'constant', value: 0.5 };
    for (const kind of ['dense', 'sparse'] as const) {
      const t: Table = new Table(spec(kind, 'adagrad', { lr: 0.1, initialAccumulator: 0.25 }, half));
      const d: number = t.spec.valueLength;
      const g = Float32Array.from({ length: d }, (_, j) => j + 1);
      t.push(list(Float64Array.of(5)), g, null);
      const v = pullAll(t, list(Float64Array.of(5)));
      const rows: Float32Array = t.rows(list(Float64Array.of(5, 6)));
      assert.equal(rows.length, 2 * d * 2);
      assert.deepEqual(Array.from(rows.subarray(0, d)), Array.from(v), `${kind}: values of key 5`);
      assert.deepEqual(Array.from(rows.subarray(d, 2 * d)), new Array(d).fill(0.5), `${kind}: values of key 6`);
      const acc = Array.from(g, (x) => Math.fround(0.25 + x * x));
      assert.deepEqual(Array.from(rows.subarray(2 * d, 3 * d)), acc, `${kind}: accumulator of key 5`);
      assert.deepEqual(Array.from(rows.subarray(3 * d, 4 * d)), new Array(d).fill(0.25), `${kind}: of key 6`);
    }
  });

  it('dropRange returns keys to their initial value and state (dense: frees whole pages, keeps lent ones intact)', () => {
    const rng = createRng(7);
    const s = spec('dense', 'adagrad', {}, { kind: 'constant', value: 0.5 });
    const t = new Table(s);
    t.push(
      range(0, DENSE_K),
      Float32Array.from({ length: DENSE_K * DENSE_D }, () => rng.next() - 0.5),
      null,
    );
    const before = pullAll(t, range(0, DENSE_K));
    const rowsBefore = t.rows(range(0, DENSE_K));
    const held = t.pull(range(40_000, 60_000)); // crosses the drop's start; not released yet
    const heldCopy = held.parts.map((p) => p.slice());
    const keysBefore = t.stats().keys;
    const [lo, hi] = [50_000, 300_000]; // part of page 0, pages 1 and 2, part of page 3
    t.dropRange(lo, hi);
    held.parts.forEach((p, i) => {
      assertSameBits(p, heldCopy[i], `lent part ${i}`);
    });
    held.release?.();
    assert.equal(t.stats().keys, keysBefore - 2 * PAGE_KEYS, 'pages 1 and 2 are freed');
    const after = pullAll(t, range(0, DENSE_K));
    for (let i = 0; i < after.length; i++) {
      const k = Math.floor(i / DENSE_D);
      if (k >= lo && k < hi) assert.equal(after[i], 0.5, `key ${k}`);
      else if (after[i] !== before[i]) assert.fail(`key ${k} outside the drop changed`);
    }
    // Values and state: the dropped keys as in a fresh table, the others as before.
    const fresh = new Table(s);
    const want = rowsBefore.slice();
    const freshRows = fresh.rows(range(0, DENSE_K));
    const nd = DENSE_K * DENSE_D;
    for (let slot = 0; slot < 2; slot++)
      want.set(freshRows.subarray(slot * nd + lo * DENSE_D, slot * nd + hi * DENSE_D), slot * nd + lo * DENSE_D);
    assertSameBits(t.rows(range(0, DENSE_K)), want, 'rows after the drop');
    assertSameBits(
      t.rows(list(Float64Array.of(lo, 87_381, hi - 1))),
      fresh.rows(list(Float64Array.of(lo, 87_381, hi - 1))),
      'dropped keys by list',
    );
    t.dropRange(0, DENSE_K);
    assert.equal(t.stats().keys, 0, 'dropping everything frees every page');
    assertSameBits(t.rows(range(0, DENSE_K)), fresh.rows(range(0, DENSE_K)), 'an emptied table reads as a fresh one');
  });

  it('dropRange removes sparse keys: stats().keys shrinks, dropped keys read as initial, whole blocks go', () => {
    const rng = createRng(8);
    const s = spec('sparse', 'adagrad', {}, { kind: 'constant', value: 0.5 });
    const t = new Table(s);
    const fresh = new Table(s);
    const keys = randomSortedKeys(rng, 4 * BLOCK_KEYS, SPARSE_K);
    t.push(
      list(keys),
      Float32Array.from({ length: keys.length * SPARSE_D }, () => rng.next() - 0.5),
      null,
    );
    const before = pullAll(t, list(keys));
    const [lo, hi] = [2 ** 38, 2 ** 39 + 2 ** 38]; // about half the keys: more than one block
    const inside = keys.filter((k) => k >= lo && k < hi);
    assert.ok(inside.length > 2 * BLOCK_KEYS);
    t.dropRange(lo, hi);
    assert.equal(t.stats().keys, keys.length - inside.length);
    assert.equal(t.exportRange(lo, hi).length, 0, 'nothing left to export in the range');
    assertSameBits(t.rows(list(inside)), fresh.rows(list(inside)), 'dropped keys read as a fresh table');
    const after = pullAll(t, list(keys));
    keys.forEach((k, i) => {
      if (k >= lo && k < hi) return;
      for (let j = 0; j < SPARSE_D; j++) assert.equal(after[i * SPARSE_D + j], before[i * SPARSE_D + j], `key ${k}`);
    });
    t.dropRange(0, SPARSE_K);
    assert.equal(t.stats().keys, 0);
    t.push(list(Float64Array.of(3, 9)), Float32Array.of(1, 1, 1, 1), null); // an emptied store takes pushes
    fresh.push(list(Float64Array.of(3, 9)), Float32Array.of(1, 1, 1, 1), null);
    assertSameBits(t.rows(list(Float64Array.of(3, 9))), fresh.rows(list(Float64Array.of(3, 9))), 'after re-push');
    assert.equal(t.stats().keys, 2);
  });

  it('writeRows refuses rows of the wrong length (TS_ERR_VALUE_LENGTH) and changes nothing', () => {
    for (const kind of ['dense', 'sparse'] as const) {
      const t = new Table(spec(kind, 'ftrl', {}, { kind: 'zeros' }));
      const d = t.spec.valueLength;
      const keys = list(Float64Array.of(1, 2, 3));
      const good = 3 * d * 3; // values + two ftrl slots
      for (const len of [0, 3 * d, good - 1, good + 1])
        assert.throws(() => t.writeRows(keys, new Float32Array(len)), { code: 'TS_ERR_VALUE_LENGTH' }, `${len}`);
      assert.throws(() => t.writeRows(range(0, 3), new Float32Array(good + d)), { code: 'TS_ERR_VALUE_LENGTH' });
      assert.throws(() => t.writeRows(range(0, t.spec.keySpace + 1), new Float32Array(0)), {
        code: 'TS_ERR_KEY_OUT_OF_RANGE',
      });
      assert.equal(t.stats().keys, 0, kind);
      t.writeRows(keys, new Float32Array(good).fill(1));
      assert.deepEqual(Array.from(t.rows(keys)), new Array(good).fill(1));
    }
  });

  it('writeRowsRange over a dense range whose pages are lent to a pull leaves the lent parts unchanged', () => {
    const rng = createRng(9);
    const t = new Table(spec('dense', 'adam', {}, { kind: 'uniform', scale: 1, seed: 5 }));
    t.push(
      range(70_000, 100_000),
      Float32Array.from({ length: 30_000 * DENSE_D }, () => rng.next()),
      null,
    );
    const held = t.pull(range(80_000, 95_000)); // parts on pages 0 and 1
    assert.ok(held.parts.length >= 2, 'the pull spans two pages');
    const heldCopy = held.parts.map((p) => p.slice());
    const rows = Float32Array.from({ length: 30_000 * DENSE_D * 3 }, () => rng.next());
    t.writeRows(range(70_000, 100_000), rows);
    held.parts.forEach((p, i) => {
      assertSameBits(p, heldCopy[i], `lent part ${i}`);
    });
    held.release?.();
    assertSameBits(t.rows(range(70_000, 100_000)), rows, 'the write took effect');
  });

  it('a key cut by a page edge reads whole through a key-list pull (d does not divide the page)', () => {
    const t = new Table(spec('dense', 'sum', {}, { kind: 'constant', value: 0.5 }));
    const edge = Math.floor(PAGE_FLOATS / DENSE_D); // its floats lie on pages 0 and 1
    assert.ok(edge * DENSE_D < PAGE_FLOATS && (edge + 1) * DENSE_D > PAGE_FLOATS, 'the key straddles the edge');
    const keys = { kind: 'list', keys: Float64Array.of(edge - 1, edge, edge + 1) } as const;
    const before = t.pull(keys).parts[0];
    assert.deepEqual([...before], new Array(3 * DENSE_D).fill(0.5), 'unpushed: initial values across both pages');
    t.push(keys, new Float32Array(3 * DENSE_D).fill(1), null);
    const after = t.pull(keys).parts[0];
    assert.deepEqual([...after], new Array(3 * DENSE_D).fill(1.5));
    assertSameBits(
      after,
      t.pull(range(edge - 1, edge + 2)).parts.reduce(concat),
      'a list pull reads what a range pull reads',
    );
  });
});

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
