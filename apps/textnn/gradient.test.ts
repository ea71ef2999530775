import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../../client/tf-backend.ts';
import { randomShard } from '../../shared/apps/random-shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { textnnGradientRef } from './eval.ts';
import { textnnGradient } from './gradient.ts';
import { denseSize, type TextnnConfig } from './model.ts';

/** |a − b| / max(|b|, scale): float32 sums of terms that cancel have an absolute, not relative, error. */
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what} length`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) {
    const err = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-2 * scale, 1e-6);
    assert.ok(err <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

describe('tfjs text-classifier gradient', () => {
  before(async () => {
    await initTf(tf, { pick: 'first' });
  });

  for (const backend of ['wasm', 'cpu']) {
    it(`matches the float64 reference on ${backend}`, async () => {
      await tf.setBackend(backend);
      const cfgs: TextnnConfig[] = [
        { dim: 8, hidden: 5 },
        { dim: 16, hidden: 16 },
      ];
      for (const [n, cfg] of cfgs.entries()) {
        const s = randomShard(10 + n, { examples: 200, perExample: 30, keys: 800, keySpace: 2 ** 20 });
        const rng = createRng(50 + n);
        const emb = Float32Array.from({ length: s.keys.length * cfg.dim }, () => (rng.next() - 0.5) * 2);
        const dense = Float32Array.from({ length: denseSize(cfg) }, () => (rng.next() - 0.5) * 1.5);
        const tensors = tf.memory().numTensors;
        const g = await textnnGradient(tf, s, emb, dense, cfg);
        assert.equal(tf.memory().numTensors, tensors, 'no tensor outlives the call');
        const ref = textnnGradientRef(s, emb, dense, cfg);
        assert.equal(g.examples, 200);
        assert.ok(Math.abs(g.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${g.loss} vs ${ref.loss}`);
        assertClose(g.gradDense, ref.gradDense, 1e-4, 'gradDense');
        assertClose(g.gradEmb, ref.gradEmb, 1e-4, 'gradEmb');
      }
    });
  }

  it('returns zeros for an empty shard and refuses values of the wrong length', async () => {
    const cfg = { dim: 2, hidden: 3 };
    const empty = randomShard(1, { examples: 0, perExample: 1, keys: 5 });
    const g = await textnnGradient(tf, empty, new Float32Array(10), new Float32Array(denseSize(cfg)), cfg);
    assert.deepEqual([...g.gradEmb], new Array(10).fill(0));
    assert.equal(g.gradDense.length, 13);
    assert.equal(g.examples, 0);
    const s = randomShard(1, { examples: 3, perExample: 2, keys: 5 });
    const code = (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_VALUE_LENGTH';
    await assert.rejects(textnnGradient(tf, s, new Float32Array(9), new Float32Array(13), cfg), code);
    await assert.rejects(textnnGradient(tf, s, new Float32Array(10), new Float32Array(12), cfg), code);
  });
});
