/**
 * The worker bootstrap's status (client/bootstrap.ts; BootStatus in bootstrap-types.ts), kept up
 * to date in place — the page exposes the object as `window.tabshard` — from the task loop's
 * events and the tasks it finishes: totals over every session, bytes, the last task's times and
 * the medians over recent ones, and the state, in which a pause wins until the volunteer resumes.
 */
import type { BootState, BootStatus } from './bootstrap-types.ts';
import type { RunnerEvent } from './runner-types.ts';
import { type TaskTimes, taskMedians } from './task-times.ts';
import type { WorkerBytes } from './worker.ts';

/** How many recent tasks the status's medians cover. */
export const RECENT_TASKS = 100;

/** The totals the task loop counts per session. */
export type Counters = Pick<BootStatus, 'tasks' | 'examples' | 'computeMs' | 'waitMs' | 'pulledValues'>;

export class StatusBook {
  readonly status: BootStatus = {
    state: 'starting',
    transports: {},
    fallback: false,
    tasks: 0,
    examples: 0,
    computeMs: 0,
    waitMs: 0,
    pulledValues: 0,
    bytes: { sent: 0, received: 0 },
    downloads: 0,
    cacheHits: 0,
    cpuShare: 1,
    paused: false,
    inTask: false,
    restedMs: 0,
    reconnects: 0,
  };
  /** Tasks abandoned (their lease was lost). */
  abandoned = 0;
  private readonly recent: TaskTimes[] = [];

  constructor(readonly changed: () => void) {}

  setState(state: BootState, step?: string): void {
    const s = this.status;
    const final = state === 'done' || state === 'stopped' || state === 'failed';
    if (final || state === 'reconnecting') s.inTask = false;
    // A pause wins over what the loop reports until the volunteer resumes.
    if (s.paused && !final && state !== 'reconnecting') {
      step = s.inTask ? 'finishing the current task' : 'no new tasks until you resume';
      state = 'paused';
    }
    s.state = state;
    s.step = step;
    this.changed();
  }

  /** A task loop event: totals are `before` (earlier sessions) plus the event's; bytes are the worker's. */
  progress(ev: RunnerEvent, before: Counters, bytes: WorkerBytes): void {
    const s = this.status;
    s.inTask = ev.inFlight > 0;
    s.tasks = before.tasks + ev.tasks;
    s.examples = before.examples + ev.examples;
    s.computeMs = before.computeMs + ev.computeMs;
    s.waitMs = before.waitMs + ev.waitMs;
    s.pulledValues = before.pulledValues + ev.pulledValues;
    s.bytes = { sent: bytes.pushed + bytes.requested, received: bytes.pulled + bytes.published };
    if (ev.state === 'done' || ev.state === 'stopped') this.setState(ev.state);
    else if (ev.state === 'waiting') this.setState('waiting', ev.lease ? undefined : 'asking the scheduler for a task');
    else this.setState('working', ev.state);
  }

  /** A task finished or was abandoned. */
  task(t: TaskTimes): void {
    if (t.abandoned) {
      this.abandoned++;
      return;
    }
    this.status.lastTask = t;
    this.recent.push(t);
    if (this.recent.length > RECENT_TASKS) this.recent.shift();
    this.status.taskMedians = taskMedians(this.recent);
  }

  counters(): Counters {
    const { tasks, examples, computeMs, waitMs, pulledValues } = this.status;
    return { tasks, examples, computeMs, waitMs, pulledValues };
  }
}
