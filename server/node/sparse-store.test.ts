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
});
