import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomShard } from '../../shared/apps/random-shard.ts';
import { createRng } from '../../shared/rng.ts';
import { countNonZero, evaluateLogreg, logregGradientRef, softplus } from './eval.ts';

describe('logistic regression in plain JS', () => {
  const s = randomShard(11, { examples: 40, perExample: 5, keys: 30 });

  it('scores zero weights as log 2 and predicts the negative class', () => {
    const ev = evaluateLogreg(s, new Float32Array(s.keys.length));
    assert.ok(Math.abs(ev.logLoss - Math.LN2) < 1e-12);
    const negatives = s.labels.filter((y) => y === 0).length;
    assert.equal(ev.accuracy, negatives / s.labels.length);
    assert.equal(ev.examples, 40);
  });

  it('has a reference gradient equal to central finite differences of the summed loss', () => {
    const rng = createRng(4);
    const w = Float64Array.from(s.keys, () => rng.next() * 2 - 1);
    const { grad, loss } = logregGradientRef(s, w);
    const total = (x: Float64Array) => evaluateLogreg(s, x).logLoss * s.labels.length;
    assert.ok(Math.abs(loss - total(w)) < 1e-9);
    const h = 1e-6;
    for (let k = 0; k < w.length; k++) {
      const plus = w.slice();
      const minus = w.slice();
      plus[k] += h;
      minus[k] -= h;
      assert.ok(Math.abs((total(plus) - total(minus)) / (2 * h) - grad[k]) < 1e-5, `key ${k}`);
    }
  });

  it('computes softplus without overflow and counts non-zeros', () => {
    assert.equal(softplus(1000), 1000);
    assert.ok(softplus(-1000) >= 0 && softplus(-1000) < 1e-300);
    assert.equal(countNonZero(Float32Array.of(0, 1e-9, -2, 0)), 2);
    assert.equal(countNonZero(Float32Array.of(0, 1e-9, -2, 0), 1e-6), 1);
  });
});
