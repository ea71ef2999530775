/**
 * The logistic-regression job on the SpamAssassin corpus (ARCHITECTURE §10): its data (shards and
 * held-out set from spam-data.ts), its weights table with the server-side updater, the iteration
 * count and the held-out target a run is expected to reach.
 *
 * Updater: FTRL-proximal with L1 (the paper's sparse logistic regression). A task pushes the
 * gradient of its shard's SUMMED log-loss (client/apps/logreg.ts). Parameters chosen by running
 * trainLogreg (logreg-train.ts) over a grid on the default data (16 shards, 2^20 keys, seed 1):
 * alpha 0.4, beta 1, l1 0.5, l2 0 gives after 12 iterations held-out accuracy 0.982 / log-loss 0.059
 * with ~7.8k non-zero weights of ~69k touched, 0.978 / 0.061 when all 16 tasks of an iteration pull
 * before any push (BSP, 16 tabs), 0.965 / 0.115 with a further iteration of staleness (τ = 1,
 * 16 tabs). Larger alpha learns faster without staleness but overshoots more with it; larger
 * beta is worse in both; l1 0.5 keeps ~11% of the touched weights non-zero.
 */
import { createHash } from 'node:crypto';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import type { TableSpec } from '../../shared/table.ts';
import { prepareSpamData, type SpamDataConfig } from './spam-data.ts';
import { CORPUS } from './spam-email.ts';

/** The weights table's updater and parameters (see the file header for how they were chosen). */
export const LOGREG_UPDATER = { updater: 'ftrl', params: { alpha: 0.4, beta: 1, l1: 0.5, l2: 0 } } as const;
/** Iterations of the job (one iteration = every shard once). */
export const LOGREG_ITERATIONS = 12;
/**
 * Held-out target. With the defaults, reached at iteration 3 when tasks run one after another, at
 * iteration 8 when 16 tasks pull before their pushes (BSP, 16 tabs), at iteration 12 with τ = 1.
 */
export const LOGREG_TARGET = { accuracy: 0.96, logLoss: 0.15 } as const;

export interface LogregJobOptions {
  job: number;
  seed?: number;
  shards?: number;
  keyBits?: number;
  /** Data cache folder (default `.cache/tabshard`); null disables the cache. */
  cacheDir?: string | null;
}

export interface LogregJob {
  job: number;
  /** Content hash of the data and table definition: the IndexedDB key prefix and the shards' ETag. */
  version: string;
  /** Encoded training shards (shared/apps/shard.ts), shard i at index i. */
  shards: Uint8Array[];
  heldout: DecodedShard;
  /** [the weights table]: sparse, keySpace 2^keyBits, valueLength 1, zeros, FTRL. */
  tables: TableSpec[];
  iterations: number;
  target: { accuracy: number; logLoss?: number };
  meta: {
    corpus: typeof CORPUS;
    /** E-mails in the corpus (training + held out). */
    examples: number;
    train: number;
    heldout: number;
    /** Positive (spam) fraction of the training set. */
    spamFraction: number;
    /** Distinct keys touched by the data (training and held out). */
    features: number;
    keyBits: number;
    nonZeros: number;
    shardBytes: { min: number; max: number; total: number };
    /** Whether the data came from the disk cache, and how long preparing it took (ms). */
    cached: boolean;
    prepareMs: number;
    data: SpamDataConfig;
  };
}

/** Prepares (or loads from the cache) the job's data and defines its table. */
export async function prepareLogregJob(opts: LogregJobOptions): Promise<LogregJob> {
  const data = await prepareSpamData({
    seed: opts.seed,
    shards: opts.shards,
    keyBits: opts.keyBits,
    cacheDir: opts.cacheDir,
  });
  const heldout = decodeShard(data.heldout);
  const keys = new Set<number>(heldout.keys);
  let train = 0;
  let spam = 0;
  let nonZeros = heldout.col.length;
  for (const bytes of data.shards) {
    const s = decodeShard(bytes);
    for (const k of s.keys) keys.add(k);
    train += s.labels.length;
    for (const y of s.labels) spam += y;
    nonZeros += s.col.length;
  }
  const sizes = data.shards.map((b) => b.byteLength);
  const table: TableSpec = {
    job: opts.job,
    id: 1,
    name: 'weights',
    kind: 'sparse',
    keySpace: 2 ** data.config.keyBits,
    valueLength: 1,
    updater: LOGREG_UPDATER.updater,
    params: { ...LOGREG_UPDATER.params },
    init: { kind: 'zeros' },
  };
  return {
    job: opts.job,
    // The table definition is part of the version: other updater parameters are another job.
    version: createHash('sha256')
      .update(`${data.version}\n${JSON.stringify(table)}\n${LOGREG_ITERATIONS}`)
      .digest('hex')
      .slice(0, 16),
    shards: data.shards,
    heldout,
    tables: [table],
    iterations: LOGREG_ITERATIONS,
    target: { ...LOGREG_TARGET },
    meta: {
      corpus: CORPUS,
      examples: train + heldout.labels.length,
      train,
      heldout: heldout.labels.length,
      spamFraction: train ? spam / train : 0,
      features: keys.size,
      keyBits: data.config.keyBits,
      nonZeros,
      shardBytes: { min: Math.min(...sizes), max: Math.max(...sizes), total: sizes.reduce((a, b) => a + b, 0) },
      cached: data.cached,
      prepareMs: data.ms,
      data: data.config,
    },
  };
}
