/**
 * A digit shard's images as dense pixels: server/data/mnist.ts stores each image as the CSR row of
 * its non-zero pixels (key = pixel index y·28 + x) and its digit as the label (`classes` 10).
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { CLASSES, PIXELS } from './model.ts';

/** E·784 floats, image i at i·784, zeros where the shard has no pixel; TS_ERR_INVALID_ARGUMENT for a shard that is not images. */
export function shardImages(s: DecodedShard): Float32Array {
  if (s.classes !== CLASSES)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `cnn: a shard of ${CLASSES} classes, not ${s.classes ?? 2}`);
  if (s.keys.length > 0 && s.keys[s.keys.length - 1] >= PIXELS)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `cnn: pixel keys must be below ${PIXELS}`);
  const E = s.labels.length;
  const out = new Float32Array(E * PIXELS);
  for (let i = 0; i < E; i++)
    for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) out[i * PIXELS + s.keys[s.col[j]]] = s.val[j];
  return out;
}
