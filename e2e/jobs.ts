/**
 * What e2e tests ask of a training job and its worker tabs, over HTTP and the browser only: the
 * worker page's `window.tabshard`, the job's status and audit (`/api/jobs/:job`, `/audit`), and
 * the cluster's JSON event lines. Shared by training.test.ts and failover.test.ts.
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { ClusterEvent, Harness } from './harness.ts';

/** What the worker page exposes as `window.tabshard` (web/worker/main.ts). */
export interface TabStatus {
  state: string;
  worker?: number;
  backend?: string;
  transports: Record<string, string>;
  fallback: boolean;
  tasks: number;
  downloads: number;
  cacheHits: number;
  reconnects?: number;
  /** Values pulled, and the tab's bytes on the wire (web/worker/main.ts). */
  pulledValues: number;
  bytes: { sent: number; received: number };
  error?: string;
}

export interface JobStatus {
  state: string;
  app: string;
  tables: string[];
  reached: boolean;
  target: { accuracy: number };
  metrics: Array<{ iteration: number; accuracy: number; logLoss: number; ms: number }>;
  reassignments: number;
  iterationsDone: number;
  tasks: { total: number; done: number };
  workers: Array<{
    worker: number;
    transport: string;
    tasksDone: number;
    tasksRefused: number;
    connected: boolean;
    leases: number;
  }>;
}

export interface Audit {
  tasks: number;
  missing: number;
  once: number;
  more: number;
  scheduler: Array<{ task: number; state: string; attempts: number; doneAttempt: number | null }>;
}

/** Deadline for a tab's next step: generous, because CI runs this beside other jobs on 2 cores. */
export const PROGRESS = { timeout: 120_000 };

export const tab = (page: Page) => page.evaluate(() => (window as unknown as { tabshard: TabStatus }).tabshard);

/** The job is done and its last held-out evaluation is in. */
export const isDone = (ev: ClusterEvent) => ev.event === 'done';
export const iterationDone = (i: number) => (ev: ClusterEvent) =>
  ev.event === 'scheduler' && ev.ev === 'iteration' && ev.iteration === i;

/** Waits until every tab is working (has a scheduler worker id) and reports its status. */
export async function working(pages: Page[]): Promise<TabStatus[]> {
  await Promise.all(
    pages.map((p) =>
      p.waitForFunction(
        () => {
          const s = (window as unknown as { tabshard?: { worker?: number; error?: string } }).tabshard;
          if (s?.error) throw new Error(s.error);
          return s?.worker !== undefined;
        },
        null,
        PROGRESS,
      ),
    ),
  );
  return Promise.all(pages.map(tab));
}

/**
 * Waits for job 1's done event (up to `timeoutMs`), then asserts it finished with the target
 * reached and every task applied exactly once (the audit table and the scheduler agree).
 */
export async function assertCompleted(h: Harness, timeoutMs = 180_000): Promise<{ status: JobStatus; audit: Audit }> {
  await h.waitForEvent(isDone, timeoutMs);
  const status = await h.api<JobStatus>('/api/jobs/1');
  const audit = await h.api<Audit>('/api/jobs/1/audit');
  const last = status.metrics.at(-1)!;
  assert.ok(last.accuracy >= status.target.accuracy, `held-out accuracy ${last.accuracy} < ${status.target.accuracy}`);
  assert.equal(status.reached, true);
  assertEveryTaskOnce(status, audit);
  return { status, audit };
}

/** Every task of the job is done, and its pushes were applied exactly once (the audit). */
export function assertEveryTaskOnce(status: JobStatus, audit: Audit): void {
  assert.equal(status.tasks.done, status.tasks.total);
  assert.deepEqual(
    { missing: audit.missing, more: audit.more, once: audit.once },
    { missing: 0, more: 0, once: audit.tasks },
  );
  assert.ok(audit.scheduler.every((t) => t.state === 'done' && t.doneAttempt !== null));
}
