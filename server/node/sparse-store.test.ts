import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { createUpdater } from '../updaters/index.ts';
import { BLOCK_KEYS, SparseStore } from './sparse-store.ts';

describe('sparse store', () => {
  it('matches a per-key model across repeated key sets, contiguous and scattered subsets, and block splits', () => {
    const rng = createRng(17);
    const d = 2;
    const store = new SparseStore(d, { kind: 'constant', value: 0.5 }, createUpdater('sum'));
    const model = new Map<number, number[]>();
    const apply = (keys: Float64Array, g: Float32Array) => {
      store.push(keys, g, 1);
      keys.forEach((k, i) => {
        const v = model.get(k) ?? [0.5, 0.5];
        model.set(k, [v[0] + g[i * d], v[1] + g[i * d + 1]]);
      });
    };
    const base = randomSortedKeys(rng, 3 * BLOCK_KEYS, 2 ** 45); // large enough to split blocks
    const grad = (n: number) => Float32Array.from({ length: n * d }, () => rng.int(7) - 3);
    apply(base, grad(base.length));
    apply(base, grad(base.length)); // the same working set again: the in-place fast path
    apply(base.subarray(1000, 9000), grad(8000)); // a contiguous stretch
    const scattered = base.filter((_, i) => i % 3 === 0);
    apply(scattered, grad(scattered.length)); // gather / scatter
    const mixed = Float64Array.from(new Set([...base.subarray(0, 500), ...randomSortedKeys(rng, 500, 2 ** 45)])).sort();
    apply(mixed, grad(mixed.length)); // inserts between existing keys
    assert.equal(store.size, model.size);
    const probe = Float64Array.from(
      new Set([...model.keys()].filter((_, i) => i % 5 === 0).concat([1, 2 ** 45 - 1])),
    ).sort();
    const got = store.pull(probe);
    probe.forEach((k, i) => {
      const want = model.get(k) ?? [0.5, 0.5];
      assert.deepEqual([got[i * d], got[i * d + 1]], want, `key ${k}`);
    });
  });
  it('writeRows and dropRanges match a per-key model: interleaved runs of new keys, overwrites in place and by merge, many ranges', () => {
    const rng = createRng(23);
    const d = 2;
    const slots = 2; // adagrad: values and one state slot
    const store = new SparseStore(
      d,
      { kind: 'constant', value: 0.25 },
      createUpdater('adagrad', { initialAccumulator: 0.5 }),
    );
    const model = new Map<number, number[]>(); // key -> [values..., state...]
    const write = (keys: Float64Array) => {
      const n = keys.length;
      const rows = Float32Array.from({ length: n * d * slots }, () => rng.int(1000) / 8);
      store.writeRows(keys, rows);
      keys.forEach((k, i) => {
        const row: number[] = [];
        for (let s = 0; s < slots; s++) for (let j = 0; j < d; j++) row.push(rows[s * n * d + i * d + j]);
        model.set(k, row);
      });
    };
    const all = randomSortedKeys(rng, 6 * BLOCK_KEYS, 2 ** 45);
    // Three members' pieces interleaved over the key space, each sent in key order (a join's copies).
    const piece = (i: number) => Math.floor(i / 700) % 3;
    for (const m of [0, 1, 2]) {
      const mine = all.filter((_, i) => piece(i) === m);
      for (let at = 0; at < mine.length; at += 5000) write(mine.subarray(at, at + 5000));
    }
    write(all.filter((_, i) => i % 7 === 0)); // scattered overwrites: every key stored, in place
    write(
      Float64Array.from(
        new Set([...all.filter((_, i) => i % 11 === 0), ...randomSortedKeys(rng, 3000, 2 ** 45)]),
      ).sort(),
    ); // overwrites and inserts: merged
    assert.equal(store.size, model.size);
    // Many ranges at once, some spanning blocks, some inside one, some empty.
    const cuts = randomSortedKeys(rng, 400, 2 ** 45);
    const ranges: Array<[number, number]> = [];
    for (let i = 0; i + 1 < cuts.length; i += 2)
      ranges.push([cuts[i], i % 20 === 0 ? cuts[i + 1] : cuts[i] + (cuts[i + 1] - cuts[i]) / 50]);
    ranges.forEach((r) => {
      r[1] = Math.floor(r[1]);
    });
    store.dropRanges(ranges);
    for (const k of [...model.keys()]) if (ranges.some(([b, e]) => k >= b && k < e)) model.delete(k);
    assert.equal(store.size, model.size);
    const probe = Float64Array.from(new Set([...all.filter((_, i) => i % 3 === 0), ...model.keys()])).sort();
    const got = store.readRows(probe);
    const n = probe.length;
    probe.forEach((k, i) => {
      const want = model.get(k) ?? [0.25, 0.25, 0.5, 0.5];
      const row: number[] = [];
      for (let s = 0; s < slots; s++) for (let j = 0; j < d; j++) row.push(got[s * n * d + i * d + j]);
      assert.deepEqual(row, want, `key ${k}`);
    });
  });
});
