/**
 * The application contract, worker half (docs/architecture.md §10). An application is one folder
 * under apps/ holding its model math, its worker side (this contract: what a task pulls and
 * computes) and its job side (apps/job-contract.ts: data, tables, evaluation, target). The page's
 * Web Worker, the Node CLI and the tests know applications only through `workerApp` (workers.ts)
 * and `jobApp` (jobs.ts); neither names an application.
 *
 * This half runs in a tab and in Node alike: it imports no Node module and nothing of server/.
 */
import type { GradientResult, PullSpec } from '../client/runner-types.ts';
import type { DecodedShard } from '../shared/apps/shard.ts';

/** The TensorFlow.js namespace (`import * as tf from '@tensorflow/tfjs'`), passed in. */
export type Tf = typeof import('@tensorflow/tfjs');

/** What a worker knows of a job's application: `GET /api/jobs/:job` → `app`, `tables`, `model`. */
export interface AppInfo {
  app: string;
  /** The model's tables, in the app's order (the audit table is not one of them). */
  tables: string[];
  /** App-specific model settings (e.g. layer sizes). */
  model?: Record<string, number>;
}

/** An application's worker side bound to one job: what a task of a shard pulls, and its gradient. */
export interface TaskMath {
  /** The tables and keys a task of `shard` pulls, and pushes its result to, in order. */
  pulls(shard: DecodedShard): PullSpec[];
  /** What a task of `shard` pushes at the pulled values (`values[i]` for `pulls(shard)[i]`). */
  gradient(tf: Tf, shard: DecodedShard, values: Float32Array[]): Promise<GradientResult>;
}

/** An application's worker side. */
export interface WorkerApp {
  /** The name jobs give (`app` of the job's JSON; `tabshard start --app NAME`). */
  readonly name: string;
  /**
   * Checks the job's tables and model settings and binds them; TS_ERR_INVALID_ARGUMENT (with
   * the app's name) when they do not fit this app.
   */
  bind(info: AppInfo): TaskMath;
}
