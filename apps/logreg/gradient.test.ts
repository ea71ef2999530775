import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTf, probeTfBackends } from '../../client/tf-backend.ts';
import { randomShard } from '../../shared/apps/random-shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { logregGradientRef } from './eval.ts';
import { logregGradient } from './gradient.ts';

describe('tfjs logistic-regression gradient', () => {
  before(async () => {
    // Registers wasm (by importing tf-backend.ts) and leaves a working backend active.
    await initTf(tf, { pick: 'first' });
  });

  it('initialises the wasm backend in Node', async () => {
    assert.equal(await tf.setBackend('wasm'), true);
    assert.equal(tf.getBackend(), 'wasm');
  });

  for (const backend of ['wasm', 'cpu']) {
    it(`matches the plain-JS reference to 1e-5 relative on ${backend}`, async () => {
      await tf.setBackend(backend);
      for (const seed of [1, 2, 3]) {
        const s = randomShard(seed, { examples: 300, perExample: 40, keys: 2000, keySpace: 2 ** 24 });
        const rng = createRng(100 + seed);
        const w = Float32Array.from(s.keys, () => (rng.next() - 0.5) * 6);
        const tensors = tf.memory().numTensors;
        const g = await logregGradient(tf, s, w);
        assert.equal(tf.memory().numTensors, tensors, 'no tensor outlives the call');
        const ref = logregGradientRef(s, w);
        assert.equal(g.examples, 300);
        assert.equal(g.grad.length, s.keys.length);
        assert.ok(Math.abs(g.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${g.loss} vs ${ref.loss}`);
        // Relative error, measured against max(|ref|, 1): float32 sums of components near zero
        // cancel, so their error is absolute (~1e-6 here), not relative.
        for (let k = 0; k < w.length; k++) {
          const err = Math.abs(g.grad[k] - ref.grad[k]) / Math.max(1, Math.abs(ref.grad[k]));
          assert.ok(err <= 1e-5, `seed ${seed} key ${k}: ${g.grad[k]} vs ${ref.grad[k]}`);
        }
      }
    });
  }

  it('returns zeros for an empty shard and refuses weights of the wrong length', async () => {
    const empty = randomShard(1, { examples: 0, perExample: 1, keys: 5 });
    const g = await logregGradient(tf, empty, new Float32Array(5));
    assert.deepEqual([...g.grad], [0, 0, 0, 0, 0]);
    assert.equal(g.examples, 0);
    const s = randomShard(1, { examples: 3, perExample: 2, keys: 5 });
    await assert.rejects(
      logregGradient(tf, s, new Float32Array(4)),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_VALUE_LENGTH',
    );
  });

  it('probes every preferred backend and picks the fastest that works', async () => {
    const probes = await probeTfBackends(tf, { prefer: ['nonexistent', 'cpu', 'wasm'] });
    assert.deepEqual(
      probes.map((p) => p.backend),
      ['nonexistent', 'cpu', 'wasm'],
    );
    assert.equal(probes[0].ms, null);
    assert.ok(probes[1].ms! > 0 && probes[2].ms! > 0);
    const chosen = await initTf(tf, { prefer: ['cpu', 'wasm'] });
    assert.ok(chosen === 'cpu' || chosen === 'wasm');
    assert.equal(tf.getBackend(), chosen);
    await assert.rejects(initTf(tf, { prefer: ['nonexistent'] }), (e: unknown) => e instanceof TabshardError);
  });
});
