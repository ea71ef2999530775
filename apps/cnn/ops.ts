/**
 * The CNN's two layer ops whose gradients tfjs 4.22's wasm backend lacks, gets wrong or runs
 * slowly, each with its gradient given by fast forward kernels (tf.customGrad), so the whole
 * network still differentiates with tf.grads on every backend:
 * - The 5 × 5 'valid' convolution (stride 1, NHWC). wasm has no Conv2DBackpropFilter kernel at
 *   all, and its Conv2DBackpropInput (and Conv3DBackpropFilterV2, a route to ∂W) are plain loops:
 *   at 100 images, conv2 (12×12×8 → 8×8×16) takes 4 ms forward but 41 ms for ∂x and 83 ms for ∂W
 *   through them, against 5-10 ms each as forward convolutions (XNNPACK).
 * - The 2 × 2 max-pool. wasm's MaxPoolGrad is wrong: on 100 random 24×24×8 inputs its gradient
 *   of Σ maxPool(x) sums to 108,035 instead of 115,200 (one per pooled value; cpu's is right),
 *   and takes 25 ms; the mask-and-upsample below takes 15 ms and agrees with cpu's.
 *
 * For y = conv(x, W), x [N,H,W,C], W [k,k,C,F], y [N,H−k+1,W−k+1,F]:
 *   ∂x = conv(pad(dy, k−1), W rotated 180° with C and F swapped)          the 'full' correlation
 *   ∂W = conv(xᵀ [C,H,W,N], dyᵀ [OH,OW,N,F]) → [C,k,k,F] → [k,k,C,F]      batch as channels
 */
import type { Tf } from '../contract.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;
type Tensor4D = import('@tensorflow/tfjs').Tensor4D;

/** maxPool(x, 2, 2, 'valid') of an even-sided x, whose gradient goes to every input equal to its window's max. */
export function maxPool2(tf: Tf, x: Tensor): Tensor {
  const f = tf.customGrad(((xi: Tensor, save: (t: Tensor[]) => void) => {
    const X = xi as Tensor4D;
    const y = tf.maxPool(X, 2, 2, 'valid');
    save([X, y]);
    return {
      value: y,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sx, sy] = saved as [Tensor4D, Tensor4D];
        const up = (t: Tensor) => tf.image.resizeNearestNeighbor(t as Tensor4D, [sx.shape[1], sx.shape[2]]);
        return tf.mul(tf.cast(tf.equal(sx, up(sy)), 'float32'), up(dy));
      },
    };
  }) as never);
  return f(x);
}

/** conv2d(x, w, 1, 'valid') whose gradient is computed by forward convolutions (file header). */
export function convValid(tf: Tf, x: Tensor, w: Tensor): Tensor {
  // customGrad's type takes (...inputs: Array<Tensor | save>); ours are (x, w, save).
  const f = tf.customGrad(((xi: Tensor, wi: Tensor, save: (t: Tensor[]) => void) => {
    const X = xi as Tensor4D;
    const W = wi as Tensor4D;
    save([X, W]);
    return {
      value: tf.conv2d(X, W, 1, 'valid'),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sx, sw] = saved as [Tensor4D, Tensor4D];
        const k = sw.shape[0];
        const dyp = tf.pad(dy as Tensor4D, [
          [0, 0],
          [k - 1, k - 1],
          [k - 1, k - 1],
          [0, 0],
        ]);
        const wFlip = tf.transpose(tf.reverse(sw, [0, 1]), [0, 1, 3, 2]);
        const dx = tf.conv2d(dyp, wFlip, 1, 'valid');
        const dw = tf.transpose(
          tf.conv2d(tf.transpose(sx, [3, 1, 2, 0]), tf.transpose(dy as Tensor4D, [1, 2, 0, 3]), 1, 'valid'),
          [1, 2, 0, 3],
        );
        return [dx, dw];
      },
    };
  }) as never);
  return f(x, w);
}
