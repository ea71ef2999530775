/**
 * The registry of applications' worker sides (contract.ts), by name: the built-ins (logreg,
 * textnn, cms, lda) and any registered later. A worker turns a job's JSON into the task math it runs with
 * `bindApp(parseAppInfo(json))`. Runs in a tab and in Node.
 */
import { TabshardError } from '../shared/errors.ts';
import { cmsWorker } from './cms/worker.ts';
import type { AppInfo, TaskMath, WorkerApp } from './contract.ts';
import { ldaWorker } from './lda/worker.ts';
import { logregWorker } from './logreg/worker.ts';
import { textnnWorker } from './textnn/worker.ts';

export type { AppInfo, TaskMath, Tf, WorkerApp } from './contract.ts';

/** Application names: a lower-case letter, then up to 31 lower-case letters, digits or '-'. */
export const APP_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

const apps = new Map<string, WorkerApp>();
const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `app: ${why}`);

/** Registers an application's worker side; TS_ERR_INVALID_ARGUMENT if its name is invalid or taken. */
export function registerWorkerApp(app: WorkerApp): void {
  if (typeof app?.name !== 'string' || !APP_NAME_RE.test(app.name))
    throw bad(`invalid name ${JSON.stringify(app?.name)}`);
  if (apps.has(app.name)) throw bad(`"${app.name}" is already registered`);
  if (typeof app.bind !== 'function') throw bad(`"${app.name}" has no bind()`);
  apps.set(app.name, app);
}

/** Names of the applications this worker can run, sorted. */
export function workerAppNames(): string[] {
  return [...apps.keys()].sort();
}

/** Validates the app fields of a job's JSON (from the gateway) into an AppInfo this worker can run. */
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
  bindApp(info); // refuses an app this worker cannot run, or tables and settings that do not fit it
  return info;
}

/** The task math of the job's application; TS_ERR_INVALID_ARGUMENT for an app this worker cannot run. */
export function bindApp(info: AppInfo): TaskMath {
  const app = apps.get(info.app);
  if (app === undefined) throw bad(`this worker cannot run app "${info.app}"`);
  return app.bind(info);
}

registerWorkerApp(logregWorker);
registerWorkerApp(textnnWorker);
registerWorkerApp(cmsWorker);
registerWorkerApp(ldaWorker);
