import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { buildShard } from '../../shared/apps/shard.ts';
import { createRng } from '../../shared/rng.ts';
import { evaluateCnn } from './eval.ts';
import { cnnGradient } from './gradient.ts';
import { cnnLayers, PIXELS } from './model.ts';

const cfg = { filters1: 2, filters2: 3, hidden: 4 };

function digits(seed: number, n: number) {
  const rng = createRng(seed);
  const rows = Array.from({ length: n }, () => {
    const keys = Float64Array.from({ length: PIXELS }, (_, i) => i).filter(() => rng.next() < 0.2);
    return { keys, values: Float32Array.from(keys, () => 0.1 + 0.9 * rng.next()) };
  });
  return {
    ...buildShard(
      0,
      rows,
      Array.from({ length: n }, () => rng.int(10)),
    ),
    classes: 10,
  };
}

const params = (seed: number) => {
  const rng = createRng(seed);
  return cnnLayers(cfg).map((l) => Float32Array.from({ length: l.size }, () => (rng.next() - 0.5) * 0.6));
};

describe('cnn gradient', () => {
  it('matches central differences of its loss (cpu), and wasm agrees with cpu', async () => {
    await tf.setBackend('cpu');
    const s = digits(1, 6);
    const p = params(2);
    const g = await cnnGradient(tf, s, p, cfg);
    const ev = await evaluateCnn(tf, s, p, cfg);
    assert.ok(Math.abs(ev.logLoss * 6 - g.loss) < 1e-3, 'evaluation and gradient agree on the loss');
    const rng = createRng(3);
    for (let t = 0; t < p.length; t++)
      for (let k = 0; k < 4; k++) {
        const i = rng.int(p[t].length);
        const at = (d: number) => {
          const q = p.map((v) => v.slice());
          q[t][i] += d;
          return cnnGradient(tf, s, q, cfg).then((r) => r.loss);
        };
        const h = 2e-3;
        const fd = ((await at(h)) - (await at(-h))) / (2 * h);
        assert.ok(
          Math.abs(fd - g.grads[t][i]) < 2e-2 * (1 + Math.abs(fd)),
          `table ${t} key ${i}: ${fd} vs ${g.grads[t][i]}`,
        );
      }
    await tf.setBackend('wasm');
    await tf.ready();
    const w = await cnnGradient(tf, s, p, cfg);
    for (let t = 0; t < p.length; t++)
      for (let i = 0; i < p[t].length; i++)
        assert.ok(
          Math.abs(w.grads[t][i] - g.grads[t][i]) < 1e-3 * (1 + Math.abs(g.grads[t][i])),
          `wasm table ${t} key ${i}`,
        );
  });

  it('refuses values that do not fit the shape, and a shard that is not digits', async () => {
    await tf.setBackend('cpu');
    const p = params(2);
    await assert.rejects(cnnGradient(tf, digits(1, 2), p.slice(0, 3), cfg), /cnn out: 0 values, not 50/);
    const binary = { ...digits(1, 2), classes: undefined };
    await assert.rejects(cnnGradient(tf, binary, p, cfg), /a shard of 10 classes/);
  });
});
