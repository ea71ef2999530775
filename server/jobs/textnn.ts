/**
 * The text-classifier job on the SpamAssassin corpus (ARCHITECTURE §10, the neural network): the
 * same shards and held-out set as the logistic-regression job (logreg.ts, spam-data.ts), and two
 * tables — the embedding table (sparse, one row of `dim` floats per hashed key) and the dense
 * table of the hidden and output layers (shared/apps/textnn-model.ts gives its layout).
 *
 * A task pushes the gradient of its shard's SUMMED log-loss (client/apps/textnn.ts).
 * HYPER-PARAMETERS: see TEXTNN_* below; chosen by the grid described at TEXTNN_UPDATERS.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TEXTNN, denseSize, type TextnnConfig } from '../../shared/apps/textnn-model.ts';
import { type Initializer, parseTableSpec, type TableSpec } from '../../shared/table.ts';
import { type LogregJob, type LogregJobOptions, prepareLogregJob } from './logreg.ts';

/** The tables' updaters and parameters. */
export const TEXTNN_UPDATERS = {
  embedding: { updater: 'adagrad', params: { lr: 0.1, eps: 1e-8, initialAccumulator: 0.1 } },
  dense: { updater: 'adagrad', params: { lr: 0.1, eps: 1e-8, initialAccumulator: 0.1 } },
} as const;
/** Initial values: small uniform embeddings; Glorot-uniform-scaled dense parameters. */
export function textnnInits(model: TextnnConfig, seed: number): { embedding: Initializer; dense: Initializer } {
  return {
    embedding: { kind: 'uniform', scale: 0.1, seed },
    dense: { kind: 'uniform', scale: Math.sqrt(6 / (model.dim + model.hidden)), seed: seed + 1 },
  };
}
/** Iterations of the job (one iteration = every shard once). */
export const TEXTNN_ITERATIONS = 12;
/** Held-out target. */
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
