/**
 * The task loop's interfaces (client/runner.ts): the lease it runs, the scheduler session and the
 * app it is given, its events and options. Apart so the loop's file stays about the loop.
 */
import type { TrafficOptions } from '../shared/protocol/values.ts';
import type { TaskTimes } from './task-times.ts';
import type { Keys, Worker } from './worker.ts';

/** A task under lease, as the scheduler hands it out. */
export interface RunnerLease {
  task: number;
  attempt: number;
  shard: number;
  iteration: number;
  /** The slowest clock when the task was granted (iterations below it are complete). */
  clock?: number;
  /** Scale the push by 1 / (1 + iteration − clock). */
  stalenessLr?: boolean;
  /** The consistency model: 0 BSP, k bounded delay, null ASP (undefined: not told). */
  tau?: number | null;
  /** Eager SSP: read subscribed values the servers publish as the clock advances. */
  eager?: boolean;
  /** How the task's pushes and pulls encode their values (absent: plain float32). */
  traffic?: TrafficOptions;
  /** The task capability, presented to the nodes before the task's reads and pushes (PROTOCOL.md §6.2). */
  cap?: string;
  /** A renewed read capability for the job. */
  read?: string;
}

/** The scheduler session, as the loop uses it (client/session.ts implements it). */
export interface RunnerSession {
  /** The worker id the scheduler gave this session: the pushes are stamped with it. */
  readonly worker?: number;
  /** The job's read capability from the session's HELLO, if the cluster issues capabilities. */
  readonly read?: string;
  /** Leases the scheduler lets this worker hold and await at once: the loop never asks past it. */
  readonly maxLeases?: number;
  next(): Promise<RunnerLease | null>;
  done(
    lease: RunnerLease,
    report: { examples: number; computeMs: number; waitMs: number; loss?: number },
  ): Promise<void>;
}

/** A shard as the loop needs it. */
export interface RunnerShard {
  index: number;
}

/** One table a task reads and then writes: its name and the keys (the shard's working set in it). */
export interface PullSpec {
  table: string;
  keys: Keys;
  /** The task only adds to these keys (e.g. counts into a sketch): nothing is read, its values are empty. */
  pushOnly?: boolean;
}

export interface GradientResult {
  /** One gradient per pulled table, in `pulls` order, d floats per key. */
  grads: Float32Array[];
  loss: number;
  examples: number;
}

/** Where the shards and the gradient computation come from. */
export interface RunnerApp<S extends RunnerShard = RunnerShard> {
  shard(index: number): Promise<S>;
  /** The tables and keys a task of `shard` pulls, and pushes its gradient to, in order. */
  pulls(shard: S): PullSpec[];
  /** The gradient at the pulled values (`values[i]` for `pulls(shard)[i]`). */
  gradient(shard: S, values: Float32Array[]): Promise<GradientResult>;
}

export type RunnerState = 'waiting' | 'pulling' | 'computing' | 'pushing' | 'done' | 'stopped';

/**
 * The loop's step (`state`, with the lease it is about) and this worker's totals. With the
 * overlapping loop a task's pushes and TASK_DONE finish in the background: an event with the new
 * totals comes when each is done, carrying the loop's step at that moment.
 */
export interface RunnerEvent {
  state: RunnerState;
  lease?: RunnerLease;
  /** Leased tasks whose TASK_DONE is not acknowledged yet (nor abandoned): 0 means nothing is held. */
  inFlight: number;
  /** Totals of this worker so far (tasks done; compute and wait as the tasks' times split the loop's). */
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  /** Values pulled (floats) so far, over every table. */
  pulledValues: number;
  loss?: number;
}

export interface RunnerOptions<S extends RunnerShard> {
  worker: Worker;
  session: RunnerSession;
  app: RunnerApp<S>;
  /** A dense table with one key per task that every finished task adds 1 to (exactly-once audit). */
  auditTable?: string;
  onevent?: (ev: RunnerEvent) => void;
  /** Resolves when the loop may start its next task (pause, CPU-share throttling). */
  gate?: () => Promise<void>;
  /** A monotonic clock in ms (performance.now by default). */
  now?: () => number;
  /** Makes this worker an f× straggler (f ≥ 1; default 1): see the file header. */
  slowdown?: number;
  /** Makes this worker stall: it rests `ms` after computing every `every`-th task (a tab in the background, a busy laptop). */
  stall?: { ms: number; every: number };
  /** Resolves after `ms` (setTimeout by default; tests pass a fake clock's). */
  sleep?: (ms: number) => Promise<void>;
  /** Eager SSP: how long a read waits for a lagging subscription before it pulls (default 2000 ms). */
  eagerWaitMs?: number;
  /** Eager SSP: subscriptions kept (per table and shard; the least recently used closes; default 8). */
  maxSubscriptions?: number;
  /**
   * 1 (default): ask for the next lease once a task's pushes are sent and read as soon as it
   * arrives (see the file header); 0: one task at a time (the next LEASE after the TASK_DONE's ACK).
   */
  prefetch?: 0 | 1;
  /** Called once per task when it is done (TASK_DONE acknowledged) or abandoned, with what it cost. */
  ontask?: (t: TaskTimes) => void;
}
