/**
 * The registry of applications' job sides (job-contract.ts), by name: the built-ins and any
 * registered later. Every registered job side must have a worker side of the same name
 * (workers.ts), or no worker could run its tasks.
 */

import { AppRegistry, appError } from './app-registry.ts';
import { cmsJob } from './cms/job.ts';
import { cnnJob } from './cnn/job.ts';
import type { JobApp } from './job-contract.ts';
import { ldaJob } from './lda/job.ts';
import { logregJob } from './logreg/job.ts';
import { textnnJob } from './textnn/job.ts';
import { workerAppNames } from './workers.ts';

export type { Heldout, JobApp, JobDataOptions, PreparedJob, PushScope, TableRead } from './job-contract.ts';

/** The application a job runs when it names none. */
export const DEFAULT_APP = 'logreg';

const apps = new AppRegistry<JobApp>((app) => {
  if (!workerAppNames().includes(app.name)) return 'has no worker side (apps/workers.ts)';
  if (typeof app.prepare !== 'function' || typeof app.check !== 'function') return 'needs check() and prepare()';
  return null;
});

/** Registers an application's job side; TS_ERR_INVALID_ARGUMENT if its name is invalid, taken, or has no worker side. */
export function registerJobApp(app: JobApp): void {
  apps.add(app);
}

/** Names of the registered applications, sorted. */
export function jobAppNames(): string[] {
  return apps.names();
}

/** The registered applications: name and one line each (`GET /api/apps`). */
export function listJobApps(): Array<{ name: string; summary: string }> {
  return jobAppNames().map((name) => ({ name, summary: apps.get(name)!.summary }));
}

/** The application registered as `name`; TS_ERR_INVALID_ARGUMENT naming the registered ones otherwise. */
export function jobApp(name: string): JobApp {
  const app = apps.get(name);
  if (app === undefined)
    throw appError(`unknown app ${JSON.stringify(name)} (registered: ${jobAppNames().join(', ')})`);
  return app;
}

registerJobApp(logregJob);
registerJobApp(textnnJob);
registerJobApp(cmsJob);
registerJobApp(ldaJob);
registerJobApp(cnnJob);
