import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from './errors.ts';
import { createRng } from './rng.ts';
import { createZipf } from './zipf.ts';

/** Exact P(k) ∝ k^-s over [1, n]. */
function zipfPmf(n: number, s: number): Float64Array {
  const p = Float64Array.from({ length: n }, (_, i) => (i + 1) ** -s);
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / z);
}

describe('Zipf sampling (rejection-inversion)', () => {
  for (const [n, s] of [
    [10, 1.1],
    [50, 0.7],
    [1000, 1],
    [5, 2.5],
  ]) {
    it(`matches the exact distribution (n ${n}, s ${s}) within sampling error`, () => {
      const draw = createZipf(createRng(n), n, s);
      const N = 200_000;
      const count = new Float64Array(n + 1);
      for (let i = 0; i < N; i++) {
        const k = draw();
        assert.ok(Number.isInteger(k) && k >= 1 && k <= n);
        count[k]++;
      }
      const p = zipfPmf(n, s);
      for (let k = 1; k <= Math.min(n, 10); k++) {
        const sd = Math.sqrt((p[k - 1] * (1 - p[k - 1])) / N);
        assert.ok(Math.abs(count[k] / N - p[k - 1]) < 5 * sd + 1e-9, `rank ${k}: ${count[k] / N} vs ${p[k - 1]}`);
      }
    });
  }

  it('is seeded: the same seed draws the same ranks, even with a huge n', () => {
    const a = createZipf(createRng(3), 4_000_000, 1.1);
    const b = createZipf(createRng(3), 4_000_000, 1.1);
    for (let i = 0; i < 1000; i++) assert.equal(a(), b());
  });

  it('refuses a bad n or exponent', () => {
    for (const [n, s] of [
      [0, 1],
      [1.5, 1],
      [10, 0],
      [10, Number.NaN],
    ])
      assert.throws(
        () => createZipf(createRng(1), n, s),
        (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
      );
  });
});
