/**
 * The fastText-like text classifier (docs/architecture.md §10, the neural-network application): its
 * configuration and the layout of its dense parameters in ONE dense table.
 *
 * Model, for example i with features (key_j, val_ij):
 *   h_i = Σ_j val_ij · E[key_j]          E: the embedding table, one row of `dim` floats per key
 *   a_i = relu(h_i · W1 + b1)             W1: dim × hidden, b1: hidden
 *   z_i = a_i · w2 + b2,  p_i = σ(z_i)    w2: hidden, b2: 1
 *
 * Dense table layout (keys 0..P−1, valueLength 1, P = dim·hidden + hidden + hidden + 1):
 *   [0, dim·hidden)                    W1, row-major: W1[k][u] at k·hidden + u
 *   [dim·hidden, dim·hidden + hidden)  b1
 *   [… + hidden, … + 2·hidden)         w2
 *   P − 1                              b2
 */
import { TabshardError } from '../../shared/errors.ts';

export type TextnnConfig = {
  /** Embedding dimension d (floats per embedding row). */
  dim: number;
  /** Hidden units H of the dense relu layer. */
  hidden: number;
};

/** The job's default shape (apps/textnn/job.ts says why). */
export const DEFAULT_TEXTNN: Readonly<TextnnConfig> = { dim: 16, hidden: 16 };

/** Offsets of the dense parameters in the dense table. */
export interface TextnnOffsets {
  w1: number;
  b1: number;
  w2: number;
  b2: number;
}

/** TS_ERR_INVALID_ARGUMENT unless dim and hidden are integers in [1, 4096]. */
export function checkTextnnConfig(cfg: TextnnConfig): void {
  for (const k of ['dim', 'hidden'] as const) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v < 1 || v > 4096)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `textnn ${k} must be an integer in [1, 4096], got ${v}`);
  }
}

/** P: the number of keys of the dense table. */
export function denseSize(cfg: TextnnConfig): number {
  checkTextnnConfig(cfg);
  return cfg.dim * cfg.hidden + 2 * cfg.hidden + 1;
}

/** Where W1, b1, w2 and b2 start in the dense table (see the file header). */
export function denseOffsets(cfg: TextnnConfig): TextnnOffsets {
  checkTextnnConfig(cfg);
  const w1 = 0;
  const b1 = cfg.dim * cfg.hidden;
  const w2 = b1 + cfg.hidden;
  return { w1, b1, w2, b2: w2 + cfg.hidden };
}
