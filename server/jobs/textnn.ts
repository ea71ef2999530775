/**
 * The text-classifier job on the SpamAssassin corpus (docs/architecture.md §10, the neural network): the
 * same shards and held-out set as the logistic-regression job (logreg.ts, spam-data.ts), and two
 * tables — the embedding table (sparse, one row of `dim` floats per hashed key) and the dense
 * table of the hidden and output layers (shared/apps/textnn-model.ts gives its layout).
 *
 * A task pushes the gradient of its shard's SUMMED log-loss (client/apps/textnn.ts). Updaters:
 * AdaGrad on both tables, embedding lr 0.03, dense lr 0.01, 20 iterations. Chosen by running
 * trainTextnn (textnn-train.ts, `npm run bench:textnn`) over a grid on the default data (16
 * shards, 2^20 keys, seed 1) at lags 0 (tasks in turn), 15 (BSP, 16 tabs) and 31 (τ = 1):
 * - Tasks in turn are easy: every setting tried (AdaGrad lr 0.03-0.3 on either table, Adam on
 *   either, d×H from 4×4 to 32×16) reaches held-out accuracy ≥ 0.99 / log-loss ≈ 0.02 by
 *   iteration 3-8. The chosen one: 0.974 / 0.113 at iteration 2, 0.993 / 0.024 at 20.
 * - Staleness is what decides. With 16 tasks pulling before their pushes, the 16 pushes of an
 *   iteration all move the dense parameters (and the frequent tokens' rows) the same way, so the
 *   step per iteration is ~16 pushes' worth: at lr 0.1 the job oscillates (BSP best 0.958 in 12
 *   iterations; τ = 1 diverges, log-loss > 10). Dense lr 0.01 with embedding lr 0.03: BSP
 *   reaches the target at iteration 7 (0.989 / 0.034 at 20), τ = 1 at iteration 14 (0.979 /
 *   0.061 at 20) — hence 20 iterations, not logreg's 12. Adam on the dense table (lr 0.001-0.003)
 *   is as good under BSP and slightly worse at τ = 1; embedding lr 0.1 is a little worse stale.
 * - Shape: d = H = 16. At the chosen learning rates (20 iterations; BSP / τ = 1 first reach):
 *   16×16 7 / 14, 8×8 9 / 15, 16×32 10 / 20, 32×16 11 / never (best 0.946). Larger shapes also
 *   cost more: a pull or push of the embedding rows is K·d floats (~13.7k keys × 16 × 4 B ≈
 *   0.87 MB per shard at d = 16, vs ~55 KB for logreg), and 8×8 halves that if bytes dominate.
 * - Init: embeddings uniform ±0.1 (h is then ~0.1 per component, as features are L2-normalised);
 *   the dense table has one initializer for all its keys, uniform ±sqrt(6/(d+H)) (Glorot for W1;
 *   the biases and w2 get the same scale, which trained fine).
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TEXTNN, denseSize, type TextnnConfig } from '../../shared/apps/textnn-model.ts';
import { type Initializer, parseTableSpec, type TableSpec } from '../../shared/table.ts';
import { type LogregJob, type LogregJobOptions, prepareLogregJob } from './logreg.ts';

/** The tables' updaters and parameters (see the file header for how they were chosen). */
export const TEXTNN_UPDATERS = {
  embedding: { updater: 'adagrad', params: { lr: 0.03, eps: 1e-8, initialAccumulator: 0.1 } },
  dense: { updater: 'adagrad', params: { lr: 0.01, eps: 1e-8, initialAccumulator: 0.1 } },
} as const;
/** Initial values: small uniform embeddings; Glorot-uniform-scaled dense parameters. */
export function textnnInits(model: TextnnConfig, seed: number): { embedding: Initializer; dense: Initializer } {
  return {
    embedding: { kind: 'uniform', scale: 0.1, seed },
    dense: { kind: 'uniform', scale: Math.sqrt(6 / (model.dim + model.hidden)), seed: seed + 1 },
  };
}
/** Iterations of the job (one iteration = every shard once). */
export const TEXTNN_ITERATIONS = 20;
/**
 * Held-out target (the logreg job's). With the defaults, reached at iteration 2 with tasks in
 * turn, 7 under BSP with 16 tabs, 14 with τ = 1.
 */
export const TEXTNN_TARGET = { accuracy: 0.96, logLoss: 0.15 } as const;

export interface TextnnJobOptions extends LogregJobOptions {
  /** Model shape (default DEFAULT_TEXTNN: dim 16, hidden 16). */
  model?: Partial<TextnnConfig>;
}

/** A LogregJob whose tables are [embedding, dense], plus the model shape. */
export interface TextnnJob extends LogregJob {
  /**
   * [embedding: sparse, keySpace 2^keyBits, valueLength dim; dense: dense, keySpace P =
   * denseSize(model), valueLength 1].
   */
  tables: TableSpec[];
  model: TextnnConfig;
}

/** Prepares (or loads from the cache) the job's data — the logreg job's — and defines its tables. */
export async function prepareTextnnJob(opts: TextnnJobOptions): Promise<TextnnJob> {
  const model: TextnnConfig = { ...DEFAULT_TEXTNN, ...opts.model };
  const P = denseSize(model);
  // The same data (shards, held-out set, meta) as the logreg job: only the tables differ.
  const base = await prepareLogregJob(opts);
  const seed = opts.seed ?? 1;
  const init = textnnInits(model, seed);
  const embedding: TableSpec = {
    job: opts.job,
    id: 1,
    name: 'embedding',
    kind: 'sparse',
    keySpace: base.tables[0].keySpace,
    valueLength: model.dim,
    updater: TEXTNN_UPDATERS.embedding.updater,
    params: { ...TEXTNN_UPDATERS.embedding.params },
    init: init.embedding,
  };
  const dense: TableSpec = {
    job: opts.job,
    id: 2,
    name: 'dense',
    kind: 'dense',
    keySpace: P,
    valueLength: 1,
    updater: TEXTNN_UPDATERS.dense.updater,
    params: { ...TEXTNN_UPDATERS.dense.params },
    init: init.dense,
  };
  // parseTableSpec validates and normalises (params sorted), as a server node stores the spec.
  const tables = [embedding, dense].map(parseTableSpec);
  return {
    ...base,
    // The logreg version covers the data; the tables and iterations make this another job.
    version: createHash('sha256')
      .update(`textnn\n${base.version}\n${JSON.stringify(tables)}\n${TEXTNN_ITERATIONS}`)
      .digest('hex')
      .slice(0, 16),
    tables,
    iterations: TEXTNN_ITERATIONS,
    target: { ...TEXTNN_TARGET },
    model,
  };
}
