/**
 * The registry of applications' job sides (job-contract.ts), by name: the built-ins and any
 * registered later. Every registered job side must have a worker side of the same name
 * (workers.ts), or no worker could run its tasks.
 */
import { TabshardError } from '../shared/errors.ts';
import { cmsJob } from './cms/job.ts';
import type { JobApp } from './job-contract.ts';
import { ldaJob } from './lda/job.ts';
import { logregJob } from './logreg/job.ts';
import { textnnJob } from './textnn/job.ts';
import { APP_NAME_RE, workerAppNames } from './workers.ts';

export type { Heldout, JobApp, JobDataOptions, PreparedJob, PushScope, TableRead } from './job-contract.ts';

/** The application a job runs when it names none. */
export const DEFAULT_APP = 'logreg';

const apps = new Map<string, JobApp>();
const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `app: ${why}`);

/** Registers an application's job side; TS_ERR_INVALID_ARGUMENT if its name is invalid, taken, or has no worker side. */
export function registerJobApp(app: JobApp): void {
  if (typeof app?.name !== 'string' || !APP_NAME_RE.test(app.name))
    throw bad(`invalid name ${JSON.stringify(app?.name)}`);
  if (apps.has(app.name)) throw bad(`"${app.name}" is already registered`);
  if (!workerAppNames().includes(app.name)) throw bad(`"${app.name}" has no worker side (apps/workers.ts)`);
  if (typeof app.prepare !== 'function' || typeof app.check !== 'function')
    throw bad(`"${app.name}" needs check() and prepare()`);
  apps.set(app.name, app);
}

/** Names of the registered applications, sorted. */
export function jobAppNames(): string[] {
  return [...apps.keys()].sort();
}

/** The registered applications: name and one line each (`GET /api/apps`). */
export function listJobApps(): Array<{ name: string; summary: string }> {
  return jobAppNames().map((name) => ({ name, summary: apps.get(name)!.summary }));
}

/** The application registered as `name`; TS_ERR_INVALID_ARGUMENT naming the registered ones otherwise. */
export function jobApp(name: string): JobApp {
  const app = apps.get(name);
  if (app === undefined) throw bad(`unknown app ${JSON.stringify(name)} (registered: ${jobAppNames().join(', ')})`);
  return app;
}

registerJobApp(logregJob);
registerJobApp(textnnJob);
registerJobApp(cmsJob);
registerJobApp(ldaJob);
