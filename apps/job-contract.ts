/**
 * The application contract, job half (docs/architecture.md §10): what the gateway's process needs
 * of an application — its data cut into shards, its tables, its iterations and target, and how
 * to evaluate the model the servers hold. The driver, the cluster, the gateway and the CLI know
 * applications only through `jobApp` (jobs.ts). Runs in Node only.
 *
 * Where a task pushes (`pushScopes`, which the driver's capabilities and receipts follow): by
 * default `tables[0]` at the shard's keys and every other table whole.
 */
import type { JobInsight } from '../shared/status.ts';
import type { TableSpec } from '../shared/table.ts';

/** How a job's data is chosen: the fields every built-in app reads; an app refuses what it cannot use. */
export interface JobDataOptions {
  job: number;
  /** Which data set (an app's own names; logreg and textnn: 'spam', the default, or 'ctr'). */
  data?: string;
  seed?: number;
  shards?: number;
  keyBits?: number;
  /** Examples in all, held out included (data sets that are generated). */
  examples?: number;
  /** App-specific model settings (e.g. textnn's layer sizes). */
  model?: Record<string, number>;
  /** Data cache folder (default `.cache/tabshard`); null disables the cache. */
  cacheDir?: string | null;
}

/** The held-out quality of a model. */
export interface Heldout {
  logLoss: number;
  accuracy: number;
}

/**
 * Where a task of a shard pushes in one table, every key of it: a sorted key list (installed on
 * the nodes as the shard's key set), a key range, or the whole table.
 */
export type PushScope = Float64Array | { begin: number; end: number } | 'whole';

/** Reads the values of `keys` (a sorted key list or a range) of one of the job's tables. */
export type TableRead = (
  table: TableSpec,
  keys: Float64Array | { begin: number; end: number },
) => Promise<Float32Array>;

/** A job's application, prepared: what the driver defines, serves and evaluates. */
export interface PreparedJob {
  /** The application's name (what workers are told to run). */
  app: string;
  job: number;
  /** Content hash of the data and tables: the IndexedDB key prefix and the shards' ETag. */
  version: string;
  /** Encoded training shards (shared/apps/shard.ts), shard i at index i. */
  shards: Uint8Array[];
  /** The model's tables, in the app's order (see the file header for tables[0]). */
  tables: TableSpec[];
  /** Iterations of the job (one iteration = every shard once). */
  iterations: number;
  /** Held-out target: accuracy, and log-loss when set. */
  target: { accuracy: number; logLoss?: number };
  /** What pages show about the data (sizes, the data set's label, …). */
  meta: object;
  /** App-specific model settings workers need (`GET /api/jobs/:job` → `model`). */
  model?: Readonly<Record<string, number>>;
  /** One or two sentences for the worker page: what the job computes, on which data, to what goal. */
  about: string;
  /** The held-out quality of the model the servers hold now, read through `read`. */
  evaluate(read: TableRead): Promise<Heldout>;
  /**
   * Where a task of `shard` pushes, one scope per table in `tables` order (absent: `tables[0]` at
   * the shard's keys, the others whole). The nodes refuse a task's push anywhere else, and its
   * TASK_DONE must carry receipts for all of it.
   */
  pushScopes?(shard: number): PushScope[];
  /**
   * Answers a query of the model the servers hold now (`GET /api/jobs/:job/query?…`, the query
   * string's fields); TS_ERR_INVALID_ARGUMENT for a query it cannot answer. Absent: no queries.
   */
  query?(read: TableRead, q: Record<string, string>): Promise<object>;
  /** What the model says now, for the console (read after each evaluation). Absent: nothing. */
  insight?(read: TableRead): Promise<JobInsight>;
}

/** An application's job side. */
export interface JobApp {
  /** The name (`tabshard start --app NAME`, `POST /api/jobs {app}`); its worker side has the same. */
  readonly name: string;
  /** One line for `GET /api/apps` and `--help`. */
  readonly summary: string;
  /**
   * Refuses options this app cannot use (TS_ERR_INVALID_ARGUMENT), at once: the CLI asks before
   * it starts anything. `prepare` refuses them too.
   */
  check(opts: Omit<JobDataOptions, 'job'>): void;
  /** Prepares (or loads from the cache) the job's data and defines its tables. */
  prepare(opts: JobDataOptions): Promise<PreparedJob>;
}
