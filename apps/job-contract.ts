/**
 * The application contract, job half (docs/architecture.md §10): what the gateway's process needs
 * of an application — its data cut into shards, its tables, its iterations and target, and how
 * to evaluate the model the servers hold. The driver, the cluster, the gateway and the CLI know
 * applications only through `jobApp` (jobs.ts). Runs in Node only.
 *
 * The tables' convention, which the driver's capabilities and receipts follow: `tables[0]` is
 * pushed at each shard's working set (`workingSet`, by default the shard's keys), every other
 * table whole.
 */
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
   * The keys of `tables[0]` a task of `shard` pushes, sorted and unique (absent: the shard's own
   * keys): the nodes refuse a task's push anywhere else.
   */
  workingSet?(shard: number): Float64Array;
  /**
   * Answers a query of the model the servers hold now (`GET /api/jobs/:job/query?…`, the query
   * string's fields); TS_ERR_INVALID_ARGUMENT for a query it cannot answer. Absent: no queries.
   */
  query?(read: TableRead, q: Record<string, string>): Promise<object>;
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
