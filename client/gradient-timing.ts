/**
 * Timing the logistic-regression gradient: median wall time of `logregGradient` on one shard with
 * the current tfjs backend, after warm-up calls (the first calls compile kernels / shaders). The
 * backend probe (tf-backend.ts) picks a backend by it; the gradient benchmarks (`npm run
 * bench:gradient` in Node, `npm run bench:browser` in a tab) time with the same loop.
 */

import type { Tf } from '../apps/contract.ts';
import { logregGradient } from '../apps/logreg/gradient.ts';
import type { DecodedShard } from '../shared/apps/shard.ts';

export interface GradientTiming {
  backend: string;
  examples: number;
  nonZeros: number;
  keys: number;
  reps: number;
  /** Median milliseconds per gradient call (upload, compute, download). */
  msMedian: number;
  msMin: number;
  examplesPerSec: number;
}

/** Times `reps` gradient calls on `shard` (weights: small seeded values) after `warmup` calls. */
export async function measureGradient(
  tf: Tf,
  shard: DecodedShard,
  opts: { reps?: number; warmup?: number } = {},
): Promise<GradientTiming> {
  const reps = Math.max(1, opts.reps ?? 20);
  const warmup = opts.warmup ?? 3;
  const weights = Float32Array.from(shard.keys, (_, i) => ((i * 2654435761) % 1000) / 1e4 - 0.05);
  for (let i = 0; i < warmup; i++) await logregGradient(tf, shard, weights);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await logregGradient(tf, shard, weights);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const msMedian = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  const examples = shard.labels.length;
  return {
    backend: tf.getBackend(),
    examples,
    nonZeros: shard.col.length,
    keys: shard.keys.length,
    reps,
    msMedian,
    msMin: ms[0],
    examplesPerSec: examples / (msMedian / 1000),
  };
}
