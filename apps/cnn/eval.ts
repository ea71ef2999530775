/**
 * Held-out quality of the CNN (model.ts) at the three tables' values: mean cross-entropy (nats)
 * and accuracy, by the same forward pass as the gradient, in batches of EVAL_BATCH images so the
 * activations of a 2,000-image set stay a few MB.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import type { Tf } from '../contract.ts';
import { shardImages } from './images.ts';
import { CLASSES, type CnnConfig, cnnLogits, cnnTensors, IMAGE_SIDE, PIXELS } from './model.ts';

const EVAL_BATCH = 500;

/** Mean cross-entropy and accuracy of the model on `s`'s images. */
export async function evaluateCnn(
  tf: Tf,
  s: DecodedShard,
  tables: readonly Float32Array[],
  cfg: CnnConfig,
): Promise<{ logLoss: number; accuracy: number }> {
  const images = shardImages(s);
  const E = s.labels.length;
  if (E === 0) return { logLoss: 0, accuracy: 0 };
  const params = tf.tidy(() => cnnTensors(tf, tables, cfg));
  let loss = 0;
  let right = 0;
  try {
    for (let at = 0; at < E; at += EVAL_BATCH) {
      const n = Math.min(EVAL_BATCH, E - at);
      const logp = tf.tidy(() =>
        tf.logSoftmax(
          cnnLogits(
            tf,
            tf.tensor4d(images.subarray(at * PIXELS, (at + n) * PIXELS), [n, IMAGE_SIDE, IMAGE_SIDE, 1]),
            params,
          ),
        ),
      );
      const lp = (await logp.data()) as Float32Array;
      logp.dispose();
      for (let i = 0; i < n; i++) {
        const row = lp.subarray(i * CLASSES, (i + 1) * CLASSES);
        const y = s.labels[at + i];
        loss -= row[y];
        let best = 0;
        for (let c = 1; c < CLASSES; c++) if (row[c] > row[best]) best = c;
        if (best === y) right++;
      }
    }
  } finally {
    for (const t of params) t.dispose();
  }
  return { logLoss: loss / E, accuracy: right / E };
}
