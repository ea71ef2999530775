/**
 * The worker's compute step of the text classifier (apps/textnn/model.ts), in TensorFlow.js:
 * from a decoded shard, the pulled embedding rows of its working set and the pulled dense
 * parameters, the gradient of the shard's SUMMED log-loss with respect to both.
 *
 * Hand-written backprop, not tf.grad: the sparse bag-of-embeddings needs gather/scatter, and in
 * tfjs 4.22 gatherND has no registered gradient while gather's gradient is unsortedSegmentSum,
 * which has no wasm kernel (see logreg.ts). The backward pass is the same few ops as the forward
 * one: per non-zero gather → scale → scatter-add by row for h, two small matMuls for the dense
 * layers, and per non-zero gather → scale → scatter-add by column for ∂L/∂E. Gathers are gatherND
 * except on cpu, where gather is faster (as in logreg.ts). `tf` is passed in.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import type { Tf } from '../contract.ts';
import { rowIds } from '../logreg/gradient.ts';
import { checkTextnnValues } from './eval.ts';
import { denseOffsets, denseSize, type TextnnConfig } from './model.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;

export interface TextnnGradient {
  /** ∂L/∂E: K·dim floats, rows in `shard.keys` order. */
  gradEmb: Float32Array;
  /** ∂L/∂(dense parameters): P floats in the layout of textnn-model.ts. */
  gradDense: Float32Array;
  /** L: the summed log-loss of the shard at the pulled parameters (natural log). */
  loss: number;
  examples: number;
}

/**
 * Gradient and loss of the shard's summed log-loss at (emb, dense). `emb` has K·dim floats (one
 * row per working-set key, in key order), `dense` has denseSize(cfg). TS_ERR_VALUE_LENGTH
 * otherwise.
 */
export async function textnnGradient(
  tf: Tf,
  s: DecodedShard,
  emb: Float32Array,
  dense: Float32Array,
  cfg: TextnnConfig,
): Promise<TextnnGradient> {
  checkTextnnValues(s, emb, dense, cfg);
  const K = s.keys.length;
  const E = s.labels.length;
  const { dim: d, hidden: H } = cfg;
  const P = denseSize(cfg);
  if (E === 0 || K === 0)
    return { gradEmb: new Float32Array(K * d), gradDense: new Float32Array(P), loss: 0, examples: E };
  const o = denseOffsets(cfg);
  const take = tf.getBackend() === 'cpu' ? (x: Tensor, i: Tensor) => tf.gather(x, tf.reshape(i, [-1])) : tf.gatherND;
  const nnz = s.col.length;
  const [ge, gd, l] = tf.tidy(() => {
    // Index tensors are [nnz, 1] (one index per row of gatherND/scatterND); int32, as tfjs has
    // no uint32 dtype (K and E are far below 2^31).
    const col = tf.tensor2d(new Int32Array(s.col.buffer, s.col.byteOffset, nnz), [nnz, 1], 'int32');
    const row = tf.tensor2d(rowIds(s), [nnz, 1], 'int32');
    const val = tf.tensor2d(s.val, [nnz, 1], 'float32');
    const y = tf.tensor2d(Float32Array.from(s.labels), [E, 1], 'float32');
    const embT = tf.tensor2d(emb, [K, d], 'float32');
    const w1 = tf.tensor2d(dense.subarray(o.w1, o.w1 + d * H), [d, H], 'float32');
    const b1 = tf.tensor1d(dense.subarray(o.b1, o.b1 + H), 'float32');
    const w2 = tf.tensor2d(dense.subarray(o.w2, o.w2 + H), [H, 1], 'float32');
    const b2 = tf.scalar(dense[o.b2], 'float32');
    // Forward: h = Σ_j val_ij E[key_j]; pre = h W1 + b1; a = relu(pre); z = a w2 + b2.
    const h = tf.scatterND(row, tf.mul(take(embT, col), val), [E, d]);
    const pre = tf.add(tf.matMul(h, w1), b1);
    const a = tf.relu(pre);
    const z = tf.add(tf.matMul(a, w2), b2);
    // log-loss per example: softplus(z) − y·z; its derivative in z: r = σ(z) − y.
    const loss = tf.sum(tf.sub(tf.softplus(z), tf.mul(y, z)));
    const r = tf.sub(tf.sigmoid(z), y);
    // Backward: g = (r w2ᵀ) ⊙ [pre > 0]; dh = g W1ᵀ.
    const g = tf.mul(tf.matMul(r, w2, false, true), tf.step(pre));
    const gW1 = tf.matMul(h, g, true, false);
    const gw2 = tf.matMul(a, r, true, false);
    const dh = tf.matMul(g, w1, false, true);
    const gradEmb = tf.scatterND(col, tf.mul(take(dh, row), val), [K, d]);
    const gradDense = tf.concat([
      tf.reshape(gW1, [-1]),
      tf.sum(g, 0),
      tf.reshape(gw2, [-1]),
      tf.reshape(tf.sum(r), [1]),
    ]);
    return [gradEmb, gradDense, loss];
  });
  try {
    const [gradEmb, gradDense, loss] = await Promise.all([ge.data(), gd.data(), l.data()]);
    return { gradEmb: gradEmb as Float32Array, gradDense: gradDense as Float32Array, loss: loss[0], examples: E };
  } finally {
    ge.dispose();
    gd.dispose();
    l.dispose();
  }
}
