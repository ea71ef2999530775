/**
 * What one task of the task loop (client/runner.ts) cost, as the worker measured it, and the
 * medians over a run that the Node CLI prints in its `finished` line and the page shows.
 *
 * Two kinds of numbers: the latency of each step (`leaseMs` … `doneMs`, from the request to its
 * reply; with the overlapping loop they overlap each other and the neighbouring tasks), and the
 * split of the loop's own wall time (`computeMs`, `waitMs`, `restMs`: every millisecond between
 * one task's compute end and the next one's is charged to the next task exactly once, so over a
 * run they add up to the loop's wall time).
 */

/** One finished (or abandoned) task. Times in ms on the worker's monotonic clock. */
export interface TaskTimes {
  task: number;
  attempt: number;
  shard: number;
  iteration: number;
  /** LEASE sent → TASK received (a hold by the scheduler included). */
  leaseMs: number;
  /** Reads issued → every value in (pulls, or eager SSP reads). */
  pullMs: number;
  /** The gradient, plus a straggler's rest (`slowdown`). */
  computeMs: number;
  /** Pushes issued (model tables and the audit table) → every ACK; sending them included. */
  pushMs: number;
  /** TASK_DONE sent → its ACK (0 when abandoned). */
  doneMs: number;
  /** Loop time charged to this task while it was blocked: on its lease, then on its reads. */
  waitMs: number;
  /** Of `waitMs`, the part blocked on the lease (the scheduler counts its hold of a LEASE itself). */
  leaseWaitMs: number;
  /** Loop time charged to this task resting under the `gate` (pause, CPU share). */
  restMs: number;
  /** Loop wall time charged to this task: restMs + waitMs + computeMs. */
  cycleMs: number;
  /** Of pullMs and pushMs, the time spent inside the calls that send them (encoding, handing frames to the transport): this thread's work, which no overlap hides. */
  sendMs: number;
  /** Frames this task's pulls, subscriptions and pushes sent (Worker.framesSent around the calls that issue them). */
  frames: number;
  /** The task's TASK_DONE was not sent or not accepted (its lease had expired): the scheduler re-runs it. */
  abandoned?: boolean;
}

/** A task's record before any of it is measured. */
export function blankTimes(lease: { task: number; attempt: number; shard: number; iteration: number }): TaskTimes {
  const { task, attempt, shard, iteration } = lease;
  const zero = { leaseMs: 0, pullMs: 0, computeMs: 0, pushMs: 0, doneMs: 0, waitMs: 0, leaseWaitMs: 0 };
  return { task, attempt, shard, iteration, ...zero, restMs: 0, cycleMs: 0, sendMs: 0, frames: 0 };
}

/** Moments of one task on the loop's clock (see `chargeLoop`). */
export interface LoopMarks {
  /** The previous task's compute end (or the loop's start): the loop's time is charged up to here. */
  mark: number;
  /** The gate entered and left before its LEASE; the LEASE sent; its reply. */
  gateAt: number;
  askedAt: number;
  gotAt: number;
  /** The previous task's pushes sent (the loop was busy sending until then). */
  sentAt: number;
  /** This task's compute start and end (a straggler's rest included). */
  c0: number;
  c1: number;
}

/**
 * Charges the loop's time from `mark` to `c1` to the task: the compute; the gate's rest; the
 * rest as wait, of which `leaseWaitMs` is the part blocked on the LEASE alone (after the gate
 * and after the previous pushes were sent).
 */
export function chargeLoop(t: TaskTimes, m: LoopMarks): void {
  t.computeMs = m.c1 - m.c0;
  t.restMs = Math.max(0, Math.min(m.askedAt, m.c0) - Math.max(m.gateAt, m.mark));
  t.waitMs = Math.max(0, m.c0 - m.mark - t.restMs);
  t.leaseWaitMs = Math.max(0, Math.min(m.gotAt, m.c0) - Math.max(m.askedAt, m.mark, m.sentAt));
  t.cycleMs = m.c1 - m.mark;
}

/** The numeric fields whose medians a summary reports. */
export const TIME_FIELDS = [
  'leaseMs',
  'pullMs',
  'computeMs',
  'pushMs',
  'doneMs',
  'waitMs',
  'leaseWaitMs',
  'restMs',
  'cycleMs',
  'sendMs',
  'frames',
] as const;

export type TimeField = (typeof TIME_FIELDS)[number];

/** Medians of each field over `tasks` (abandoned ones left out), rounded to 0.01 ms; null fields when there are none. */
export function taskMedians(tasks: readonly TaskTimes[]): Record<TimeField, number | null> & { n: number } {
  const done = tasks.filter((t) => !t.abandoned);
  const out = { n: done.length } as Record<TimeField, number | null> & { n: number };
  for (const f of TIME_FIELDS) out[f] = done.length ? round2(median(done.map((t) => t[f]))) : null;
  return out;
}

/** The median of `xs` (mean of the two middle values for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `x` rounded to 2 decimals (for JSON lines). */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
