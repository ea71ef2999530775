/**
 * Seeded Zipf sampling: ranks k ∈ [1, n] with P(k) ∝ k^-s, exact, in O(1) expected time and O(1)
 * memory whatever n (no cumulative table), by rejection-inversion (W. Hörmann, G. Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete distributions", ACM TOMACS
 * 1996; the same algorithm as Apache Commons' RejectionInversionZipfSampler). Used for the
 * power-law feature frequencies of synthetic click-through data.
 */
import { TabshardError } from './errors.ts';
import type { Rng } from './rng.ts';

/** (e^x − 1)/x, continuous at 0. */
function expm1x(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x / 2 + (x * x) / 6;
}

/** ln(1 + x)/x, continuous at 0. */
function log1px(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x / 2 + (x * x) / 3;
}

/** Returns a sampler of Zipf ranks in [1, n] with exponent s > 0, drawing from `rng`. */
export function createZipf(rng: Rng, n: number, s: number): () => number {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `zipf: n must be an integer in [1, 2^32], got ${n}`);
  if (!(s > 0 && s < 64)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `zipf: exponent must be in (0, 64)`);
  // H(x) = ∫ x^-s = ((x^(1-s)) − 1)/(1 − s) and its inverse, written to stay exact near s = 1.
  const H = (x: number) => {
    const lx = Math.log(x);
    return expm1x((1 - s) * lx) * lx;
  };
  const Hinv = (y: number) => {
    let t = y * (1 - s);
    if (t < -1) t = -1; // rounding only: t ≥ −1 in exact arithmetic
    return Math.exp(log1px(t) * y);
  };
  const h = (x: number) => Math.exp(-s * Math.log(x));
  const hX1 = H(1.5) - 1;
  const hN = H(n + 0.5);
  const squeeze = 2 - Hinv(H(2.5) - h(2));
  return () => {
    for (;;) {
      const u = hN + rng.next() * (hX1 - hN);
      const x = Hinv(u);
      let k = Math.floor(x + 0.5);
      if (k < 1) k = 1;
      else if (k > n) k = n;
      if (k - x <= squeeze || u >= H(k + 0.5) - h(k)) return k;
    }
  };
}
