/**
 * The registry of applications' worker sides (contract.ts), by name: the built-ins (logreg,
 * textnn, cms, lda, cnn) and any registered later. A worker turns a job's JSON into the task math it runs with
 * `bindApp(parseAppInfo(json))`. Runs in a tab and in Node.
 */
import { AppRegistry, appError } from './app-registry.ts';
import { cmsWorker } from './cms/worker.ts';
import { cnnWorker } from './cnn/worker.ts';
import type { AppInfo, TaskMath, WorkerApp } from './contract.ts';
import { ldaWorker } from './lda/worker.ts';
import { logregWorker } from './logreg/worker.ts';
import { textnnWorker } from './textnn/worker.ts';

export type { AppInfo, TaskMath, Tf, WorkerApp } from './contract.ts';

const apps = new AppRegistry<WorkerApp>((app) => (typeof app.bind === 'function' ? null : 'has no bind()'));

/** Registers an application's worker side; TS_ERR_INVALID_ARGUMENT if its name is invalid or taken. */
export function registerWorkerApp(app: WorkerApp): void {
  apps.add(app);
}

/** Names of the applications this worker can run, sorted. */
export function workerAppNames(): string[] {
  return apps.names();
}

/** Validates the app fields of a job's JSON (from the gateway) into an AppInfo this worker can run. */
export function parseAppInfo(o: unknown): AppInfo {
  if (typeof o !== 'object' || o === null) throw appError('job info must be an object');
  const { app, tables, model } = o as Record<string, unknown>;
  if (typeof app !== 'string') throw appError('app must be a string');
  if (!Array.isArray(tables) || tables.length === 0 || !tables.every((t) => typeof t === 'string'))
    throw appError('tables must be a non-empty array of names');
  const info: AppInfo = { app, tables: tables as string[] };
  if (model !== undefined) {
    if (typeof model !== 'object' || model === null) throw appError('model must be an object');
    const m: Record<string, number> = {};
    for (const [k, v] of Object.entries(model)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw appError(`model.${k} must be a number`);
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
  if (app === undefined) throw appError(`this worker cannot run app "${info.app}"`);
  return app.bind(info);
}

registerWorkerApp(logregWorker);
registerWorkerApp(textnnWorker);
registerWorkerApp(cmsWorker);
registerWorkerApp(ldaWorker);
registerWorkerApp(cnnWorker);
