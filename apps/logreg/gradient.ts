/**
 * The worker's compute step of sparse logistic regression, in TensorFlow.js: from a decoded shard
 * and the pulled weights of its working set, the gradient of the shard's summed log-loss.
 *
 * Sum, not mean: the push is Σ_i ∇ℓ_i over the shard's examples, so pushes from shards of
 * different sizes weigh by their examples, and the job's updater step size (apps/logreg/job.ts)
 * is tuned for shard sums. No dense [examples × keys] matrix is formed: per non-zero,
 * gather → multiply → scatter-add by row gives the margins, and scatter-add by column the gradient.
 * Scatter-add is `scatterND` (duplicate indices are summed): `unsortedSegmentSum` has no wasm kernel
 * in tfjs 4.22 and is O(segments × non-zeros) on cpu. Gathers are `gatherND` (~10× faster than
 * `gather` on wasm for 50k indices: 0.45 vs 6.8 ms), except on cpu where `gather` is ~2× faster.
 * `tf` is passed in, so the same code runs in a Web Worker, a page and Node.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { Tf } from '../contract.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;

export interface LogregGradient {
  /** ∂L/∂w for each working-set key (in `shard.keys` order), L = Σ_i log-loss of example i. */
  grad: Float32Array;
  /** L: the summed log-loss of the shard at the pulled weights (natural log). */
  loss: number;
  examples: number;
}

/** Row index of each non-zero, computed once per decoded shard. */
const rowIdsOf = new WeakMap<DecodedShard, Int32Array>();

/** The example (row) index of each non-zero of `s`, cached per decoded shard. */
export function rowIds(s: DecodedShard): Int32Array {
  let r = rowIdsOf.get(s);
  if (r === undefined) {
    r = new Int32Array(s.col.length);
    for (let i = 0; i + 1 < s.rowPtr.length; i++) r.fill(i, s.rowPtr[i], s.rowPtr[i + 1]);
    rowIdsOf.set(s, r);
  }
  return r;
}

/** Gradient and loss of the shard's summed log-loss at `weights` (one float per working-set key). */
export async function logregGradient(tf: Tf, s: DecodedShard, weights: Float32Array): Promise<LogregGradient> {
  const K = s.keys.length;
  const E = s.labels.length;
  if (weights.length !== K) throw new TabshardError('TS_ERR_VALUE_LENGTH', `${weights.length} weights for ${K} keys`);
  if (E === 0 || K === 0) return { grad: new Float32Array(K), loss: 0, examples: E };
  // gatherND is ~10× faster than gather on wasm, gather ~2× faster than gatherND on cpu.
  const take = tf.getBackend() === 'cpu' ? (x: Tensor, i: Tensor) => tf.gather(x, tf.reshape(i, [-1])) : tf.gatherND;
  const [g, l] = tf.tidy(() => {
    const w = tf.tensor1d(weights, 'float32');
    // tfjs has no uint32 dtype: indices travel as int32 (K and E are far below 2^31).
    // Index tensors are [nnz, 1] (one index per row of gatherND/scatterND). tfjs has no uint32
    // dtype: indices travel as int32 (K and E are far below 2^31).
    const col = tf.tensor2d(new Int32Array(s.col.buffer, s.col.byteOffset, s.col.length), [s.col.length, 1], 'int32');
    const row = tf.tensor2d(rowIds(s), [s.col.length, 1], 'int32');
    const val = tf.tensor1d(s.val, 'float32');
    const y = tf.tensor1d(Float32Array.from(s.labels), 'float32');
    const z = tf.scatterND(row, tf.mul(take(w, col), val), [E]);
    // log-loss per example: softplus(z) − y·z; its derivative in z: σ(z) − y.
    const loss = tf.sum(tf.sub(tf.softplus(z), tf.mul(y, z)));
    const r = tf.sub(tf.sigmoid(z), y);
    const grad = tf.scatterND(col, tf.mul(take(r, row), val), [K]);
    return [grad, loss];
  });
  try {
    const [grad, loss] = await Promise.all([g.data(), l.data()]);
    return { grad: grad as Float32Array, loss: loss[0], examples: E };
  } finally {
    g.dispose();
    l.dispose();
  }
}
