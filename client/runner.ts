/**
 * The worker loop (docs/workers.md), the same for a browser tab and a headless Node worker:
 * lease a task from the scheduler, get its shard (cached), pull the shard's working set, compute
 * the gradient, push it under the task's stamp, report the task done. Each piece it needs is
 * named by a small interface and passed in, so the page, the Node CLI and the tests assemble it
 * from what they have (a Web Worker or in-process tfjs, IndexedDB or memory for shards).
 */
import { TabshardError } from '../shared/errors.ts';
import type { Worker } from './worker.ts';

/** A task under lease, as the scheduler hands it out. */
export interface RunnerLease {
  task: number;
  attempt: number;
  shard: number;
  iteration: number;
}

/** The scheduler session, as the loop uses it (client/session.ts implements it). */
export interface RunnerSession {
  next(): Promise<RunnerLease | null>;
  done(
    lease: RunnerLease,
    report: { examples: number; computeMs: number; waitMs: number; loss?: number },
  ): Promise<void>;
}

/** A shard as the loop needs it: the sorted keys its examples touch. */
export interface RunnerShard {
  index: number;
  keys: Float64Array;
}

export interface GradientResult {
  grad: Float32Array;
  loss: number;
  examples: number;
}

/** Where the shards and the gradient computation come from. */
export interface RunnerApp<S extends RunnerShard = RunnerShard> {
  shard(index: number): Promise<S>;
  gradient(shard: S, weights: Float32Array): Promise<GradientResult>;
}

export type RunnerState = 'waiting' | 'pulling' | 'computing' | 'pushing' | 'done' | 'stopped';

export interface RunnerEvent {
  state: RunnerState;
  lease?: RunnerLease;
  /** Totals of this worker so far. */
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  loss?: number;
}

export interface RunnerOptions<S extends RunnerShard> {
  worker: Worker;
  session: RunnerSession;
  app: RunnerApp<S>;
  /** The table the gradient is pushed to and the weights pulled from. */
  table: string;
  /** A dense table with one key per task that every finished task adds 1 to (exactly-once audit). */
  auditTable?: string;
  onevent?: (ev: RunnerEvent) => void;
  /** Resolves when the loop may start its next task (pause, CPU-share throttling). */
  gate?: () => Promise<void>;
  /** A monotonic clock in ms (performance.now by default). */
  now?: () => number;
}

/** Tasks of a dead lease are abandoned quietly: the scheduler has already handed them on. */
const ABANDON = new Set(['TS_ERR_LEASE_EXPIRED', 'TS_ERR_NOT_LEASED']);

export class TaskRunner<S extends RunnerShard = RunnerShard> {
  private stopped = false;
  private readonly totals = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0 };
  private readonly now: () => number;

  constructor(private readonly opts: RunnerOptions<S>) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Stops after the current task. */
  stop(): void {
    this.stopped = true;
  }

  /** Runs tasks until the job is done or `stop()`; resolves with this worker's totals. */
  async run(): Promise<RunnerEvent> {
    const { worker, session, app } = this.opts;
    const weights = worker.table(this.opts.table);
    const audit = this.opts.auditTable ? worker.table(this.opts.auditTable) : null;
    while (!this.stopped) {
      await this.opts.gate?.();
      this.emit('waiting');
      const t0 = this.now();
      const lease = await session.next();
      const waitMs = this.now() - t0;
      this.totals.waitMs += waitMs;
      if (!lease) return this.emit('done');
      try {
        worker.setTask(lease.task, lease.attempt);
        const shard = await app.shard(lease.shard);
        this.emit('pulling', lease);
        const w = (await worker.wait(weights.pull(shard.keys))) as Float32Array;
        this.emit('computing', lease);
        const c0 = this.now();
        const g = await app.gradient(shard, w);
        const computeMs = this.now() - c0;
        this.emit('pushing', lease);
        const pushes = [worker.wait(weights.push(shard.keys, g.grad))];
        if (audit) pushes.push(worker.wait(audit.push({ begin: lease.task - 1, end: lease.task }, ONE)));
        await Promise.all(pushes);
        await session.done(lease, { examples: g.examples, computeMs, waitMs, loss: g.loss });
        this.totals.tasks++;
        this.totals.examples += g.examples;
        this.totals.computeMs += computeMs;
        this.emit('waiting', lease, g.loss);
      } catch (err) {
        if (!(err instanceof TabshardError) || !ABANDON.has(err.code)) throw err;
      } finally {
        worker.setTask(0, 0);
      }
    }
    return this.emit('stopped');
  }

  private emit(state: RunnerState, lease?: RunnerLease, loss?: number): RunnerEvent {
    const ev: RunnerEvent = { state, lease, ...this.totals, loss };
    this.opts.onevent?.(ev);
    return ev;
  }
}

const ONE = new Float32Array([1]);
