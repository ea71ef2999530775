/**
 * Seeded synthetic shards (tests, the backend probe, benchmarks): examples with a fixed number of
 * non-zeros over a working set of `keys` keys drawn from [0, keySpace), labels from a hidden
 * linear model so the data is learnable.
 */
import { createRng, randomSortedKeys } from '../rng.ts';
import type { DecodedShard } from './shard.ts';

export interface RandomShardOptions {
  index?: number;
  examples: number;
  /** Non-zeros per example (at most `keys`). */
  perExample: number;
  /** Working-set size. */
  keys: number;
  /** Keys are drawn from [0, keySpace) (default 2^52). */
  keySpace?: number;
}

export function randomShard(seed: number, o: RandomShardOptions): DecodedShard {
  const rng = createRng(seed);
  const keys = randomSortedKeys(rng, o.keys, o.keySpace ?? 2 ** 52);
  const truth = Float64Array.from(keys, () => rng.next() * 2 - 1);
  const per = Math.min(o.perExample, o.keys);
  const rowPtr = new Uint32Array(o.examples + 1);
  const col = new Uint32Array(o.examples * per);
  const val = new Float32Array(o.examples * per);
  const labels = new Uint8Array(o.examples);
  const picked = new Set<number>();
  for (let i = 0; i < o.examples; i++) {
    picked.clear();
    while (picked.size < per) picked.add(rng.int(o.keys));
    const cols = Uint32Array.from(picked).sort();
    let z = 0;
    for (let j = 0; j < per; j++) {
      const v = Math.fround(rng.next() / Math.sqrt(per));
      col[i * per + j] = cols[j];
      val[i * per + j] = v;
      z += v * truth[cols[j]];
    }
    rowPtr[i + 1] = (i + 1) * per;
    labels[i] = z > 0 ? 1 : 0;
  }
  return { index: o.index ?? 0, keys, rowPtr, col, val, labels };
}
