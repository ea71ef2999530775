import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomShard } from '../../shared/apps/random-shard.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { evaluateTextnn, textnnGradientRef } from './eval.ts';
import { denseSize } from './model.ts';

describe('text-classifier plain-JS model', () => {
  // Two keys (dim 2), one hidden unit: W1 = [1, −1], b1 = 0, w2 = 2, b2 = −1.
  const cfg = { dim: 2, hidden: 1 };
  const dense = [1, -1, 0, 2, -1];
  // E[key 0] = (3, 1), E[key 1] = (0, 2).
  const emb = [3, 1, 0, 2];
  const shard: DecodedShard = {
    index: 0,
    keys: Float64Array.of(10, 20),
    // ex 0: 1·E0 → h = (3, 1), pre = 2, z = 3 (label 1, right)
    // ex 1: 1·E1 → h = (0, 2), pre = −2, relu 0, z = −1 (label 1, wrong)
    // ex 2: 0.5·E0 + 0.5·E1 → h = (1.5, 1.5), pre = 0, z = −1 (label 0, right)
    rowPtr: Uint32Array.of(0, 1, 2, 4),
    col: Uint32Array.of(0, 1, 0, 1),
    val: Float32Array.of(1, 1, 0.5, 0.5),
    labels: Uint8Array.of(1, 1, 0),
  };

  it('evaluates a hand-made case', () => {
    const ev = evaluateTextnn(shard, emb, dense, cfg);
    const sp = (z: number) => Math.log1p(Math.exp(z));
    const want = (sp(3) - 3 + sp(-1) + 1 + sp(-1)) / 3;
    assert.equal(ev.examples, 3);
    assert.ok(Math.abs(ev.logLoss - want) < 1e-12, `${ev.logLoss} vs ${want}`);
    assert.equal(ev.accuracy, 2 / 3);
  });

  it('gives the hand-derived gradient on the hand-made case', () => {
    const g = textnnGradientRef(shard, emb, dense, cfg);
    const s = (z: number) => 1 / (1 + Math.exp(-z));
    const r0 = s(3) - 1; // only example 0 has an active hidden unit (pre = 2 > 0)
    const [r1, r2] = [s(-1) - 1, s(-1)];
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(g.gradDense[4], r0 + r1 + r2); // b2
    close(g.gradDense[3], r0 * 2); // w2: r0 · a0
    close(g.gradDense[2], r0 * 2); // b1: r0 · w2
    close(g.gradDense[0], 3 * r0 * 2); // W1[0]: h0[0] · r0 · w2
    close(g.gradDense[1], 1 * r0 * 2); // W1[1]
    // ∂L/∂E[key 0] = val · W1 · (r0 · w2) from example 0 only; key 1 gets nothing.
    for (const [i, v] of [2 * r0, -2 * r0, 0, 0].entries()) close(g.gradEmb[i], v);
  });

  it('matches central finite differences of the summed loss on a random shard', () => {
    const c = { dim: 4, hidden: 3 };
    const s = randomShard(3, { examples: 40, perExample: 6, keys: 30 });
    const rng = createRng(9);
    const e = Float64Array.from({ length: 30 * c.dim }, () => rng.next() * 2 - 1);
    const d = Float64Array.from({ length: denseSize(c) }, () => rng.next() * 2 - 1);
    const g = textnnGradientRef(s, e, d, c);
    const total = () => evaluateTextnn(s, e, d, c).logLoss * 40;
    assert.ok(Math.abs(total() - g.loss) < 1e-9);
    const h = 1e-6;
    for (const [arr, grad] of [
      [e, g.gradEmb],
      [d, g.gradDense],
    ] as const) {
      for (let i = 0; i < arr.length; i++) {
        const x = arr[i];
        arr[i] = x + h;
        const up = total();
        arr[i] = x - h;
        const down = total();
        arr[i] = x;
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(fd - grad[i]) < 1e-5 * Math.max(1, Math.abs(fd)), `${i}: ${grad[i]} vs ${fd}`);
      }
    }
  });

  it('refuses values of the wrong length', () => {
    const code = (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_VALUE_LENGTH';
    assert.throws(() => evaluateTextnn(shard, [1, 2, 3], dense, cfg), code);
    assert.throws(() => textnnGradientRef(shard, emb, [1, 2], cfg), code);
  });
});
