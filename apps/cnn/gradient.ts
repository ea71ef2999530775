/**
 * The worker's compute step of the CNN (model.ts): the gradient of a shard's SUMMED softmax
 * cross-entropy with respect to all the parameters, by tfjs autodiff (tf.valueAndGrads; the
 * convolutions' own gradients are conv.ts's).
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import type { Tf } from '../contract.ts';
import { shardImages } from './images.ts';
import { CLASSES, type CnnConfig, cnnLayers, cnnLogits, cnnTensors, IMAGE_SIDE } from './model.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;

export interface CnnGradient {
  /** ∂L/∂θ of each table (model.ts: conv1, conv2, out), in its layout. */
  grads: Float32Array[];
  /** L: the shard's summed cross-entropy (nats). */
  loss: number;
  examples: number;
}

/** The shard's images [E,28,28,1] and one-hot labels [E,10]. Call inside tf.tidy. */
export function shardTensors(tf: Tf, s: DecodedShard): { x: Tensor; y: Tensor } {
  const E = s.labels.length;
  return {
    x: tf.tensor4d(shardImages(s), [E, IMAGE_SIDE, IMAGE_SIDE, 1], 'float32'),
    y: tf.oneHot(tf.tensor1d(Int32Array.from(s.labels), 'int32'), CLASSES),
  };
}

/** Summed cross-entropy of logits [E,10] against one-hot labels [E,10]. Call inside tf.tidy. */
export function summedCrossEntropy(tf: Tf, y: Tensor, logits: Tensor): Tensor {
  return tf.sum(tf.mul(y, tf.neg(tf.logSoftmax(logits))));
}

/**
 * Gradient and loss at the three tables' values `tables` (conv1, conv2, out);
 * TS_ERR_VALUE_LENGTH when one does not fit the shape.
 */
export async function cnnGradient(
  tf: Tf,
  s: DecodedShard,
  tables: readonly Float32Array[],
  cfg: CnnConfig,
): Promise<CnnGradient> {
  const layers = cnnLayers(cfg);
  const E = s.labels.length;
  if (E === 0) {
    shardImages(s); // still refuses a shard that is not images
    tf.tidy(() => cnnTensors(tf, tables, cfg)); // and values that do not fit
    return { grads: layers.map((l) => new Float32Array(l.size)), loss: 0, examples: 0 };
  }
  const out = tf.tidy(() => {
    const { x, y } = shardTensors(tf, s);
    const p = cnnTensors(tf, tables, cfg);
    const { value, grads } = tf.valueAndGrads((...q: Tensor[]) => summedCrossEntropy(tf, y, cnnLogits(tf, x, q)))(p);
    // Each table's gradient: its weights' then its bias's, flat.
    const per = layers.map((_, i) => tf.concat([tf.reshape(grads[2 * i], [-1]), grads[2 * i + 1]]));
    return [...per, value];
  });
  try {
    const data = await Promise.all(out.map((t) => t.data()));
    return { grads: data.slice(0, layers.length) as Float32Array[], loss: data[layers.length][0], examples: E };
  } finally {
    for (const t of out) t.dispose();
  }
}
