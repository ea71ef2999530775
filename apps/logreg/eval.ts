/**
 * Logistic regression in plain JS over a decoded shard: held-out evaluation (log-loss, accuracy),
 * the reference gradient the tfjs kernel is tested against, and a non-zero count for L1 models.
 * `weights` always holds one float per key of the shard's working set, in key order (what a pull
 * of `shard.keys` returns).
 */

import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';

export interface LogregEval {
  /** Mean log-loss (natural log) over the examples. */
  logLoss: number;
  /** Fraction of examples with (margin > 0) === label. */
  accuracy: number;
  examples: number;
}

function checkWeights(s: DecodedShard, weights: ArrayLike<number>): void {
  if (weights.length !== s.keys.length)
    throw new TabshardError('TS_ERR_VALUE_LENGTH', `${weights.length} weights for ${s.keys.length} keys`);
}

/** Margins z_i = Σ_j val_ij · w[col_ij] of every example, in float64. */
export function logregMargins(s: DecodedShard, weights: ArrayLike<number>): Float64Array {
  checkWeights(s, weights);
  const E = s.labels.length;
  const z = new Float64Array(E);
  for (let i = 0; i < E; i++) {
    let acc = 0;
    for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) acc += s.val[j] * weights[s.col[j]];
    z[i] = acc;
  }
  return z;
}

/** log(1 + e^z) without overflow. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** Held-out log-loss and accuracy of `weights` on `s`. */
export function evaluateLogreg(s: DecodedShard, weights: ArrayLike<number>): LogregEval {
  const z = logregMargins(s, weights);
  const E = z.length;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < E; i++) {
    const y = s.labels[i];
    loss += softplus(z[i]) - y * z[i];
    if (z[i] > 0 === (y === 1)) correct++;
  }
  return { logLoss: E ? loss / E : 0, accuracy: E ? correct / E : 0, examples: E };
}

/**
 * Reference gradient (float64, plain loops) of the summed log-loss L = Σ_i softplus(z_i) − y_i z_i:
 * ∂L/∂w_k = Σ_{i,j: col_ij = k} (σ(z_i) − y_i) · val_ij. Returns the summed loss too.
 */
export function logregGradientRef(s: DecodedShard, weights: ArrayLike<number>): { grad: Float64Array; loss: number } {
  const z = logregMargins(s, weights);
  const grad = new Float64Array(s.keys.length);
  let loss = 0;
  for (let i = 0; i < z.length; i++) {
    const y = s.labels[i];
    loss += softplus(z[i]) - y * z[i];
    const r = 1 / (1 + Math.exp(-z[i])) - y;
    for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) grad[s.col[j]] += r * s.val[j];
  }
  return { grad, loss };
}

/** Number of entries with |w| > eps (an L1 model's size). */
export function countNonZero(weights: ArrayLike<number>, eps = 0): number {
  let n = 0;
  for (let i = 0; i < weights.length; i++) if (Math.abs(weights[i]) > eps) n++;
  return n;
}
