/**
 * The text classifier (textnn-model.ts) in plain JS over a decoded shard, in float64: held-out
 * evaluation (log-loss, accuracy) and the reference gradient the tfjs kernel
 * (apps/textnn/gradient.ts) is tested against. `emb` holds one row of `dim` floats per key of the
 * shard's working set, in key order (what a pull of `shard.keys` from the embedding table
 * returns); `dense` holds the P dense parameters in the layout of textnn-model.ts.
 */

import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { softplus } from '../logreg/eval.ts';
import { denseOffsets, denseSize, type TextnnConfig } from './model.ts';

export interface TextnnEval {
  /** Mean log-loss (natural log) over the examples. */
  logLoss: number;
  /** Fraction of examples with (z > 0) === label. */
  accuracy: number;
  examples: number;
}

export interface TextnnGradientRef {
  /** ∂L/∂E, K·dim, rows in `shard.keys` order. */
  gradEmb: Float64Array;
  /** ∂L/∂(dense parameters), P, in the dense layout. */
  gradDense: Float64Array;
  /** L: the summed log-loss. */
  loss: number;
}

/** TS_ERR_VALUE_LENGTH unless emb has K·dim floats and dense has P. */
export function checkTextnnValues(
  s: DecodedShard,
  emb: ArrayLike<number>,
  dense: ArrayLike<number>,
  cfg: TextnnConfig,
): void {
  const K = s.keys.length;
  if (emb.length !== K * cfg.dim)
    throw new TabshardError('TS_ERR_VALUE_LENGTH', `${emb.length} embedding floats for ${K} keys × ${cfg.dim}`);
  const P = denseSize(cfg);
  if (dense.length !== P) throw new TabshardError('TS_ERR_VALUE_LENGTH', `${dense.length} dense floats, expected ${P}`);
}

/** Scratch rows of one example's forward pass. */
interface Scratch {
  h: Float64Array;
  pre: Float64Array;
}

/** Forward pass of example i: fills h (dim) and pre (hidden, before relu); returns z. */
function forward(
  s: DecodedShard,
  i: number,
  emb: ArrayLike<number>,
  dense: ArrayLike<number>,
  cfg: TextnnConfig,
  x: Scratch,
): number {
  const { dim: d, hidden: H } = cfg;
  const o = denseOffsets(cfg);
  x.h.fill(0);
  for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) {
    const v = s.val[j];
    const row = s.col[j] * d;
    for (let k = 0; k < d; k++) x.h[k] += v * emb[row + k];
  }
  let z = dense[o.b2];
  for (let u = 0; u < H; u++) {
    let p = dense[o.b1 + u];
    for (let k = 0; k < d; k++) p += x.h[k] * dense[o.w1 + k * H + u];
    x.pre[u] = p;
    if (p > 0) z += p * dense[o.w2 + u];
  }
  return z;
}

const scratch = (cfg: TextnnConfig): Scratch => ({
  h: new Float64Array(cfg.dim),
  pre: new Float64Array(cfg.hidden),
});

/** Held-out log-loss and accuracy of the model (emb, dense) on `s`. */
export function evaluateTextnn(
  s: DecodedShard,
  emb: ArrayLike<number>,
  dense: ArrayLike<number>,
  cfg: TextnnConfig,
): TextnnEval {
  checkTextnnValues(s, emb, dense, cfg);
  const E = s.labels.length;
  const x = scratch(cfg);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < E; i++) {
    const z = forward(s, i, emb, dense, cfg, x);
    const y = s.labels[i];
    loss += softplus(z) - y * z;
    if (z > 0 === (y === 1)) correct++;
  }
  return { logLoss: E ? loss / E : 0, accuracy: E ? correct / E : 0, examples: E };
}

/**
 * Reference gradient (float64, plain loops, hand-written backprop) of the summed log-loss
 * L = Σ_i softplus(z_i) − y_i z_i. With r_i = σ(z_i) − y_i and g_i = r_i · w2 ⊙ [pre_i > 0]:
 * ∂L/∂b2 = Σ r_i, ∂L/∂w2 = Σ r_i a_i, ∂L/∂b1 = Σ g_i, ∂L/∂W1 = Σ h_iᵀ g_i,
 * ∂L/∂E[key_j] = Σ_i val_ij · (W1 g_i).
 */
export function textnnGradientRef(
  s: DecodedShard,
  emb: ArrayLike<number>,
  dense: ArrayLike<number>,
  cfg: TextnnConfig,
): TextnnGradientRef {
  checkTextnnValues(s, emb, dense, cfg);
  const { dim: d, hidden: H } = cfg;
  const o = denseOffsets(cfg);
  const gradEmb = new Float64Array(s.keys.length * d);
  const gradDense = new Float64Array(denseSize(cfg));
  const x = scratch(cfg);
  const g = new Float64Array(H);
  const dh = new Float64Array(d);
  let loss = 0;
  for (let i = 0; i < s.labels.length; i++) {
    const z = forward(s, i, emb, dense, cfg, x);
    const y = s.labels[i];
    loss += softplus(z) - y * z;
    const r = 1 / (1 + Math.exp(-z)) - y;
    gradDense[o.b2] += r;
    for (let u = 0; u < H; u++) {
      const on = x.pre[u] > 0;
      gradDense[o.w2 + u] += on ? r * x.pre[u] : 0;
      g[u] = on ? r * dense[o.w2 + u] : 0;
      gradDense[o.b1 + u] += g[u];
    }
    for (let k = 0; k < d; k++) {
      let acc = 0;
      for (let u = 0; u < H; u++) {
        gradDense[o.w1 + k * H + u] += x.h[k] * g[u];
        acc += dense[o.w1 + k * H + u] * g[u];
      }
      dh[k] = acc;
    }
    for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) {
      const v = s.val[j];
      const row = s.col[j] * d;
      for (let k = 0; k < d; k++) gradEmb[row + k] += v * dh[k];
    }
  }
  return { gradEmb, gradDense, loss };
}
