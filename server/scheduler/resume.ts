/**
 * A scheduler's progress across a restart (docs/architecture.md §6): what a checkpoint keeps of
 * its task table, and how a fresh table is brought back to it — the done tasks done, every other
 * task that was ever leased (before the checkpoint or after it, up to the crash) fenced at a new
 * attempt before it runs again.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { ConsistencyGate } from './gate.ts';
import type { Leases } from './leases.ts';
import type { Task, TaskQueue } from './tasks.ts';
import type { ResumePoint, SchedulerProgress } from './types.ts';

/** What a checkpoint keeps (taken while no lease is out). */
export function progressOf(queue: TaskQueue): SchedulerProgress {
  const p: SchedulerProgress = { done: [], started: [] };
  for (const t of queue.records())
    if (t.state === 'done') p.done.push([t.task, t.doneAttempt ?? t.attempt, t.doneBy]);
    else if (t.attempts > 0 || t.attempt > 0) p.started.push([t.task, t.attempt, t.attempts]);
  return p;
}

/** Brings a task table that has handed out nothing back to `r`; returns how many tasks were re-fenced. */
export function applyResume(
  r: ResumePoint,
  job: number,
  d: { queue: TaskQueue; gate: ConsistencyGate; leases: Leases },
): number {
  const task = (id: number): Task => {
    const t = d.queue.get(id);
    if (!t) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `resume: no task ${id} in job ${job}`);
    return t;
  };
  for (const [id, attempt, worker] of r.progress.done) {
    const t = task(id);
    if (t.state === 'done') continue;
    d.queue.claim(t);
    d.queue.setState(t, 'done');
    t.attempt = attempt;
    t.doneAttempt = attempt;
    t.doneBy = worker;
    d.gate.taskDone(t.iteration);
  }
  const refence = new Map<number, number>();
  for (const [id, attempt, attempts] of r.progress.started) {
    const t = task(id);
    t.attempt = attempt;
    t.attempts = attempts;
    refence.set(id, attempt);
  }
  for (const [id, attempt] of r.granted) refence.set(id, Math.max(refence.get(id) ?? 0, attempt + 1));
  for (const [id, attempt] of refence) {
    const t = task(id);
    if (t.state === 'done') continue;
    d.queue.claim(t);
    d.leases.refence(t, attempt);
  }
  return refence.size;
}
