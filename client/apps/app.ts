/**
 * The applications a worker can run (docs/architecture.md §10), by the name the job gives
 * (`GET /api/jobs/:job` → `app`, `tables`, `model`): which tables and keys a task of a shard pulls,
 * and its gradient. The page's Web Worker and the Node CLI both go through here, so adding an app
 * means adding it once.
 *
 * - `logreg`: sparse logistic regression; one table (`tables[0]`, the weights, one float per key),
 *   pulled for the shard's keys.
 * - `textnn`: the text classifier (shared/apps/textnn-model.ts); `model` = {dim, hidden}. Two
 *   tables: `tables[0]` the embedding rows (dim floats per key) of the shard's keys, sparse;
 *   `tables[1]` the dense layers, all of them, as one key range.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { checkTextnnConfig, denseSize, type TextnnConfig } from '../../shared/apps/textnn-model.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { GradientResult, PullSpec } from '../runner.ts';
import { logregGradient, type Tf } from './logreg.ts';
import { textnnGradient } from './textnn.ts';

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
  if (info.app === 'textnn') {
    if (info.tables.length < 2) throw bad('textnn needs an embedding and a dense table');
    checkTextnnConfig(textnnModel(info));
    return;
  }
  throw bad(`this worker cannot run app "${info.app}"`);
}

function textnnModel(info: AppInfo): TextnnConfig {
  return { dim: info.model?.dim ?? Number.NaN, hidden: info.model?.hidden ?? Number.NaN };
}

/** The tables and keys a task of `shard` pulls (and pushes its gradient to), in order. */
export function appPulls(info: AppInfo, shard: DecodedShard): PullSpec[] {
  checkApp(info);
  if (info.app === 'textnn')
    return [
      { table: info.tables[0], keys: shard.keys },
      { table: info.tables[1], keys: { begin: 0, end: denseSize(textnnModel(info)) } },
    ];
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
  if (info.app === 'textnn') {
    const g = await textnnGradient(tf, shard, values[0], values[1], textnnModel(info));
    return { grads: [g.gradEmb, g.gradDense], loss: g.loss, examples: g.examples };
  }
  const g = await logregGradient(tf, shard, values[0]);
  return { grads: [g.grad], loss: g.loss, examples: g.examples };
}
