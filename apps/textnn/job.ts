/**
 * The text-classifier job on the SpamAssassin corpus (docs/architecture.md §10, the neural network): the
 * same shards and held-out set as the logistic-regression job (logreg.ts, spam-data.ts), and two
 * tables — the embedding table (sparse, one row of `dim` floats per hashed key) and the dense
 * table of the hidden and output layers (apps/textnn/model.ts gives its layout).
 *
 * A task pushes the gradient of its shard's SUMMED log-loss (apps/textnn/gradient.ts). Updaters:
 * AdaGrad on both tables, embedding lr 0.03, dense lr 0.01, 20 iterations. Chosen by running
 * trainTextnn (train.ts, `npm run bench:textnn`) over a grid on the default data (16
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
 *
 * Push bounds (the tables' `bounds`, refused by the nodes with TS_ERR_PUSH_BOUND): MEASURED, not
 * proven. Unlike logreg's, this gradient grows with the parameters (∂L/∂w2 = Σ_i r_i·a_i, a_i =
 * relu(h_i W1 + b1), h_i = Σ_j x_ij E[key_j]), which are bounded only by AdaGrad moving each one
 * less than lr per push: over 20 × 16 pushes |W1|, |w2| ≤ 3.6 and |E| ≤ 9.7, which bounds |∂L/∂w2|
 * by ~10⁶ on a shard — far above any push worth refusing. So measureTextnnPushes runs the job in
 * process (train.ts, the float64 reference gradient rounded to float32 as a push is) at
 * the staleness the parameters were tuned for — lags 0, S − 1 and 2S − 1 (tasks in turn, BSP and
 * τ = 1 with one tab per shard, S shards) — for the job's iterations, and each table's bounds are
 * TEXTNN_BOUND_FACTOR (10) × the largest |v| and push L2 norm seen (a frame carries part of one
 * push). Computed once per data, model and table definition at preparation (~25 s on the default
 * data) and cached beside the data; data of more than TEXTNN_MEASURE_MAX_EXAMPLES training
 * examples gets no bounds (a measuring run would take too long). Default data, measured: embedding
 * max |v| 46.0, norm 119.5 (both at τ = 1; 17.7 / 40.1 with tasks in turn), dense 425.1 / 768.8
 * (τ = 1; 41.6 / 87.3 in turn) — so bounds 460 / 1195 and 4251 / 7688. Not covered: more
 * staleness than τ = 1 (the job is not tuned for it and may diverge, where no bound holds).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CACHE_DIR } from '../../server/data/data-cache.ts';
import { singleFlight } from '../../server/data/single-flight.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { type Initializer, type PushBounds, parseTableSpec, type TableSpec } from '../../shared/table.ts';
import type { JobApp } from '../job-contract.ts';
import {
  aboutLogreg,
  checkLogregOptions,
  type LogregJob,
  type LogregJobOptions,
  prepareLogregJob,
} from '../logreg/job.ts';
import { evaluateTextnn, textnnGradientRef } from './eval.ts';
import { checkTextnnConfig, DEFAULT_TEXTNN, denseSize, type TextnnConfig } from './model.ts';
import { trainTextnn } from './train.ts';

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

/** The tables' bounds are this many times the largest push measured in clean runs (file header). */
export const TEXTNN_BOUND_FACTOR = 10;
/** Data with more training examples than this gets no measured bounds (file header). */
export const TEXTNN_MEASURE_MAX_EXAMPLES = 50_000;
/** Bump when the measurement changes: cached measurements stop matching. */
const MEASURE_VERSION = 1;

/** The largest push seen per table: max |v| and L2 norm of one push. */
export interface TextnnPushSizes {
  embedding: Required<PushBounds>;
  dense: Required<PushBounds>;
}

/** How a textnn job's bounds were measured. */
export interface TextnnPushMeasure {
  measured: TextnnPushSizes;
  factor: number;
  /** Push lags of the measuring runs (as trainTextnn's `lag`). */
  lags: number[];
  iterations: number;
  /** True when read from the cache; ms: how long measuring (or reading) took. */
  cached: boolean;
  ms: number;
}

/** The lags measured for S shards: tasks in turn, BSP and τ = 1 with one worker per shard. */
export function textnnMeasureLags(shards: number): number[] {
  return [...new Set([0, shards - 1, 2 * shards - 1])];
}

/**
 * The largest pushes of clean in-process runs (trainTextnn with the float64 reference gradient,
 * rounded to float32 as a worker's push is) of these tables, one run per lag.
 */
export async function measureTextnnPushes(o: {
  tables: readonly TableSpec[];
  model: TextnnConfig;
  shards: readonly DecodedShard[];
  heldout: DecodedShard;
  iterations: number;
  lags: readonly number[];
}): Promise<TextnnPushSizes> {
  const out: TextnnPushSizes = { embedding: { value: 0, norm: 0 }, dense: { value: 0, norm: 0 } };
  const see = (b: Required<PushBounds>, g: Float32Array) => {
    let sq = 0;
    for (let i = 0; i < g.length; i++) {
      b.value = Math.max(b.value, Math.abs(g[i]));
      sq += g[i] * g[i];
    }
    b.norm = Math.max(b.norm, Math.sqrt(sq));
  };
  for (const lag of o.lags)
    await trainTextnn({
      ...o,
      lag,
      gradient: async (s, emb, dense) => {
        const r = textnnGradientRef(s, emb, dense, o.model);
        const g = { gradEmb: new Float32Array(r.gradEmb), gradDense: new Float32Array(r.gradDense) };
        see(out.embedding, g.gradEmb);
        see(out.dense, g.gradDense);
        return { ...g, loss: r.loss, examples: s.labels.length };
      },
    });
  return out;
}

/** The measured sizes of `key` from the cache file, or measured now and written there. */
async function cachedMeasure(
  dir: string | null,
  key: unknown,
  measure: () => Promise<TextnnPushSizes>,
): Promise<{ sizes: TextnnPushSizes; cached: boolean }> {
  const text = JSON.stringify(key);
  const file =
    dir === null
      ? null
      : join(dir, `textnn-pushes-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.json`);
  const read = (): TextnnPushSizes | null => {
    try {
      const o = JSON.parse(readFileSync(file!, 'utf8')) as { key: unknown; sizes: TextnnPushSizes };
      const ok = (b: Required<PushBounds> | undefined) =>
        b !== undefined && [b.value, b.norm].every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0);
      if (JSON.stringify(o.key) === text && ok(o.sizes?.embedding) && ok(o.sizes?.dense))
        return { embedding: o.sizes.embedding, dense: o.sizes.dense };
    } catch {
      // missing or damaged: measured again
    }
    return null;
  };
  if (file === null) return { sizes: await measure(), cached: false };
  let measured = false;
  mkdirSync(dir!, { recursive: true });
  // One process measures; another preparing the same job meanwhile waits for its file.
  const sizes = await singleFlight(`${file}.lock`, read, async () => {
    const sizes = await measure();
    measured = true;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ key, sizes })}\n`);
    renameSync(tmp, file); // atomic, as the data cache
    return sizes;
  });
  return { sizes, cached: !measured };
}

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
  /** How the tables' push bounds were measured; null when the data is too large to measure (no bounds). */
  pushMeasure: TextnnPushMeasure | null;
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
  const unbounded = [embedding, dense].map(parseTableSpec);
  const pushMeasure = await measurePushes(opts, base, unbounded, model);
  const bounded = (t: TableSpec, m: Required<PushBounds>) =>
    parseTableSpec({ ...t, bounds: { value: m.value * TEXTNN_BOUND_FACTOR, norm: m.norm * TEXTNN_BOUND_FACTOR } });
  const tables = pushMeasure
    ? [bounded(unbounded[0], pushMeasure.measured.embedding), bounded(unbounded[1], pushMeasure.measured.dense)]
    : unbounded;
  const heldout = base.heldout;
  const target = { ...TEXTNN_TARGET };
  const m = base.meta;
  const about = aboutLogreg(
    'a small neural network (an embedding row per hashed feature feeding a hidden layer, trained with AdaGrad)',
    m.dataset,
    {
      train: m.train,
      heldout: m.heldout,
      shards: base.shards.length,
      keyBits: m.keyBits,
      iterations: TEXTNN_ITERATIONS,
      goal: `${target.accuracy * 100} % accuracy and log-loss ≤ ${target.logLoss.toFixed(4)}`,
    },
  );
  return {
    ...base,
    app: 'textnn',
    about,
    // The logreg version covers the data; the tables and iterations make this another job.
    version: createHash('sha256')
      .update(`textnn\n${base.version}\n${JSON.stringify(tables)}\n${TEXTNN_ITERATIONS}`)
      .digest('hex')
      .slice(0, 16),
    tables,
    iterations: TEXTNN_ITERATIONS,
    target,
    model,
    pushMeasure,
    async evaluate(read) {
      const [emb, d] = await Promise.all([read(tables[0], heldout.keys), read(tables[1], { begin: 0, end: P })]);
      return evaluateTextnn(heldout, emb, d, model);
    },
  };
}

/** The job's push measure (file header), from the cache beside the data when there. */
async function measurePushes(
  opts: TextnnJobOptions,
  base: LogregJob,
  tables: TableSpec[],
  model: TextnnConfig,
): Promise<TextnnPushMeasure | null> {
  if (base.meta.train > TEXTNN_MEASURE_MAX_EXAMPLES) return null;
  const t0 = performance.now();
  const lags = textnnMeasureLags(base.shards.length);
  const iterations = TEXTNN_ITERATIONS;
  // What the measurement depends on: the data (its configuration decides its bytes), the model,
  // the tables' updaters and initial values (not the job id), the runs.
  const key = {
    measure: MEASURE_VERSION,
    dataset: base.meta.dataset.name,
    data: base.meta.data,
    model,
    tables: tables.map(({ job: _, ...t }) => t),
    iterations,
    lags,
  };
  const dir = opts.cacheDir === undefined ? DEFAULT_CACHE_DIR : opts.cacheDir;
  const { sizes, cached } = await cachedMeasure(dir, key, () =>
    measureTextnnPushes({
      tables,
      model,
      shards: base.shards.map((b) => decodeShard(b)),
      heldout: base.heldout,
      iterations,
      lags,
    }),
  );
  return { measured: sizes, factor: TEXTNN_BOUND_FACTOR, lags, iterations, cached, ms: performance.now() - t0 };
}

/** The text classifier's job side (job-contract.ts). */
export const textnnJob: JobApp = {
  name: 'textnn',
  check(opts) {
    checkLogregOptions(opts);
    for (const k of Object.keys(opts.model ?? {}))
      if (k !== 'dim' && k !== 'hidden')
        throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `textnn has no model setting ${k}`);
    checkTextnnConfig({ ...DEFAULT_TEXTNN, ...opts.model });
  },
  summary: 'a text classifier (bag of embeddings, a relu layer) on the SpamAssassin corpus',
  prepare: (opts) => prepareTextnnJob(opts as TextnnJobOptions),
};
