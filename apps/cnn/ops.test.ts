import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { convValid, maxPool2 } from './ops.ts';

type T4 = tf.Tensor4D;
const maxDiff = async (a: tf.Tensor, b: tf.Tensor) => (await tf.max(tf.abs(tf.sub(a, b))).data())[0];

describe('cnn ops: gradients by forward kernels', () => {
  it('convValid has the value and both gradients of tf.conv2d (cpu reference)', async () => {
    await tf.setBackend('cpu');
    const x = tf.randomNormal([3, 12, 12, 4], 0, 1, 'float32', 1);
    const w = tf.randomNormal([5, 5, 4, 6], 0, 1, 'float32', 2);
    const c = tf.randomNormal([3, 8, 8, 6], 0, 1, 'float32', 3);
    const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as T4, b as T4, 1, 'valid'), c)))([
      x,
      w,
    ]);
    const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(convValid(tf, a, b), c)))([x, w]);
    assert.ok((await maxDiff(convValid(tf, x, w), tf.conv2d(x as T4, w as T4, 1, 'valid'))) < 1e-4);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(ours[i].shape, ref[i].shape);
      assert.ok((await maxDiff(ours[i], ref[i])) < 1e-3, `gradient ${i}`);
    }
  });

  it('maxPool2 routes each window gradient to its max, on cpu and wasm alike', async () => {
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      await tf.ready();
      const x = tf.randomNormal([4, 24, 24, 8], 0, 1, 'float32', 5);
      const c = tf.randomNormal([4, 12, 12, 8], 0, 1, 'float32', 6);
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(maxPool2(tf, a), c)))(x);
      // Reference: cpu's maxPool gradient, which is right.
      await tf.setBackend('cpu');
      const xr = tf.tensor(await x.data(), x.shape);
      const cr = tf.tensor(await c.data(), c.shape);
      const ref = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as T4, 2, 2, 'valid'), cr)))(xr);
      assert.ok((await maxDiff(tf.tensor(await g.data(), g.shape), ref)) < 1e-5, backend);
    }
  });
});
