/**
 * The convolutional network on handwritten digits (the image workload): its shape, the
 * layout of its parameters in dense tables, and its forward pass in TensorFlow.js. The gradient is
 * tfjs autodiff (gradient.ts), not hand-written backprop.
 *
 * For a 28 × 28 grey image x (pixels in [0, 1]), with c1 = filters1, c2 = filters2, H = hidden:
 *   conv1: 5×5 valid, 1 → c1 channels, + b1, relu, 2×2 max-pool    28 → 24 → 12
 *   conv2: 5×5 valid, c1 → c2 channels, + b2, relu, 2×2 max-pool   12 → 8 → 4
 *   hidden (when H > 0): the 4·4·c2 features · Wh + bh, relu → H
 *   out: the features (or the hidden layer) · W3 + b3 → 10 logits, softmax
 *
 * One dense table per layer (so each gets its own initial scale), keys 0..size−1 and valueLength
 * 1, each the layer's weights then its biases, row-major in tfjs's own shapes:
 *   conv1: W1 [5,5,1,c1], b1 [c1]   conv2: W2 [5,5,c1,c2], b2 [c2]   hidden: Wh [16·c2,H], bh [H]
 *   out: W3 [H or 16·c2, 10], b3 [10]
 */
import { TabshardError } from '../../shared/errors.ts';
import type { Tf } from '../contract.ts';
import { convValid, maxPool2 } from './ops.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;

export const IMAGE_SIDE = 28;
export const PIXELS = IMAGE_SIDE * IMAGE_SIDE;
export const CLASSES = 10;
const KERNEL = 5;

export interface CnnConfig {
  filters1: number;
  filters2: number;
  /** Units of a relu dense layer between the last pool and the softmax layer; 0: none. */
  hidden: number;
}

/** The job's default shape (apps/cnn/job.ts says why). */
export const DEFAULT_CNN: Readonly<CnnConfig> = { filters1: 16, filters2: 32, hidden: 0 };

/** TS_ERR_INVALID_ARGUMENT unless both filter counts are integers in [1, 256] and hidden in [0, 1024]. */
export function checkCnnConfig(cfg: CnnConfig): CnnConfig {
  for (const k of ['filters1', 'filters2'] as const) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v < 1 || v > 256)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `cnn ${k} must be an integer in [1, 256], got ${v}`);
  }
  if (!Number.isInteger(cfg.hidden) || cfg.hidden < 0 || cfg.hidden > 1024)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `cnn hidden must be an integer in [0, 1024], got ${cfg.hidden}`);
  return cfg;
}

/** A layer: its table's name, its fan-in (for the initial scale) and its blocks' shapes. */
export interface CnnLayer {
  name: 'conv1' | 'conv2' | 'hidden' | 'out';
  fanIn: number;
  weights: number[];
  bias: number[];
  /** Keys of its table: weights then biases. */
  size: number;
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The layers in table order (file header). */
export function cnnLayers(cfg: CnnConfig): CnnLayer[] {
  const { filters1: c1, filters2: c2, hidden: H } = checkCnnConfig(cfg);
  const features = 16 * c2; // 4 × 4 × c2 after the second pool
  const layer = (name: CnnLayer['name'], fanIn: number, weights: number[]): CnnLayer => {
    const bias = [weights[weights.length - 1]];
    return { name, fanIn, weights, bias, size: count(weights) + bias[0] };
  };
  return [
    layer('conv1', KERNEL * KERNEL, [KERNEL, KERNEL, 1, c1]),
    layer('conv2', KERNEL * KERNEL * c1, [KERNEL, KERNEL, c1, c2]),
    ...(H > 0 ? [layer('hidden', features, [features, H])] : []),
    layer('out', H > 0 ? H : features, [H > 0 ? H : features, CLASSES]),
  ];
}

/** All parameters of the model. */
export function cnnParams(cfg: CnnConfig): number {
  return cnnLayers(cfg).reduce((n, l) => n + l.size, 0);
}

/** The weight and bias tensors [W1, b1, W2, b2, (Wh, bh,) W3, b3] of the tables' values. Call inside tf.tidy. */
export function cnnTensors(tf: Tf, tables: readonly Float32Array[], cfg: CnnConfig): Tensor[] {
  return cnnLayers(cfg).flatMap((l, i) => {
    const v = tables[i];
    if (v === undefined || v.length !== l.size)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `cnn ${l.name}: ${v?.length ?? 0} values, not ${l.size}`);
    const w = count(l.weights);
    return [tf.tensor(v.subarray(0, w), l.weights, 'float32'), tf.tensor(v.subarray(w), l.bias, 'float32')];
  });
}

/** Logits [E, 10] of images [E, 28, 28, 1] under parameters `p` (cnnTensors' order). Call inside tf.tidy. */
export function cnnLogits(tf: Tf, images: Tensor, p: Tensor[]): Tensor {
  const [w1, b1, w2, b2, ...dense] = p;
  // pool(relu(conv + b)) = relu(pool(conv) + b): max commutes with adding a per-channel constant
  // and with relu, and the bias and relu then touch a quarter of the values.
  const block = (x: Tensor, w: Tensor, b: Tensor) => tf.relu(tf.add(maxPool2(tf, convValid(tf, x, w)), b));
  const a2 = block(block(images, w1, b1), w2, b2);
  let a = tf.reshape(a2, [images.shape[0], -1]);
  for (let i = 0; i < dense.length; i += 2) {
    a = tf.add(tf.matMul(a, dense[i]), dense[i + 1]);
    if (i + 2 < dense.length) a = tf.relu(a);
  }
  return a;
}
