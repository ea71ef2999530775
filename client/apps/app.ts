/**
 * The applications a worker can run (ARCHITECTURE §10), by the name the job gives
 * (`GET /api/jobs/:job` → `app`, `tables`, `model`): which tables and keys a task of a shard pulls,
 * and its gradient. The page's Web Worker and the Node CLI both go through here, so adding an app
 * means adding it once.
 *
 * - `logreg`: sparse logistic regression; one table (`tables[0]`, the weights, one float per key),
 *   pulled for the shard's keys.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { GradientResult, PullSpec } from '../runner.ts';
import { logregGradient, type Tf } from './logreg.ts';

/** What a worker needs to know of a job's application. */
export interface AppInfo {
  app: string;
  /** The model's tables, in the app's order (the audit table is not one of them). */
  tables: string[];
  /** App-specific model settings (e.g. layer sizes). */
  model?: Record<string, number>;
}

const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `app: ${why}`);

/** Validates the app fields of a job's JSON (from the gateway) into an AppInfo. */
export function parseAppInfo(o: unknown): AppInfo {
  if (typeof o !== 'object' || o === null) throw bad('job info must be an object');
  const { app, tables, model } = o as Record<string, unknown>;
  if (typeof app !== 'string') throw bad('app must be a string');
  if (!Array.isArray(tables) || tables.length === 0 || !tables.every((t) => typeof t === 'string'))
    throw bad('tables must be a non-empty array of names');
  const info: AppInfo = { app, tables: tables as string[] };
  if (model !== undefined) {
    if (typeof model !== 'object' || model === null) throw bad('model must be an object');
    const m: Record<string, number> = {};
    for (const [k, v] of Object.entries(model)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`model.${k} must be a number`);
      m[k] = v;
    }
    info.model = m;
  }
  checkApp(info);
  return info;
}

function checkApp(info: AppInfo): void {
  if (info.app === 'logreg') return;
  throw bad(`this worker cannot run app "${info.app}"`);
}

/** The tables and keys a task of `shard` pulls (and pushes its gradient to), in order. */
export function appPulls(info: AppInfo, shard: DecodedShard): PullSpec[] {
  checkApp(info);
  return [{ table: info.tables[0], keys: shard.keys }];
}

/** The gradient of a task of `shard` at the pulled values (`values[i]` for `appPulls(…)[i]`). */
export async function appGradient(
  tf: Tf,
  info: AppInfo,
  shard: DecodedShard,
  values: Float32Array[],
): Promise<GradientResult> {
  checkApp(info);
  const g = await logregGradient(tf, shard, values[0]);
  return { grads: [g.grad], loss: g.loss, examples: g.examples };
}
