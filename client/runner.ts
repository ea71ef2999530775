/**
 * The worker loop (docs/workers.md), the same for a browser tab and a headless Node worker:
 * lease a task from the scheduler, get its shard (cached), pull the shard's working set from each
 * of the app's tables, compute the gradient, push it under the task's stamp, report the task
 * done. Each piece it needs is named by a small interface and passed in, so the page, the Node
 * CLI and the tests assemble it from what they have (a Web Worker or in-process tfjs, IndexedDB
 * or memory for shards).
 *
 * Two options of the consistency study (ARCHITECTURE §5, §8) live here, because they are what a
 * worker does with its lease: a staleness-aware learning rate (the push is scaled by
 * 1 / (1 + s), s = the lease's iteration − the slowest clock when it was granted), and a
 * configurable slowdown that makes this worker an f× straggler (it rests (f − 1)× the time its
 * pull and gradient took before it pushes, as a device f× slower would).
 *
 * Eager SSP (§5): when the lease says so, the runner keeps a subscription to each table's keys of
 * the shards it ran (the servers publish their values every time the slowest clock advances;
 * the scheduler gives a worker its shard again when it can). A task whose subscription already
 * holds values at clock ≥ iteration − τ reads them without a round trip; one whose subscription
 * lags waits for the publication (at most `eagerWaitMs`, then pulls); a shard seen the first time
 * is pulled, then subscribed. With eager reads the staleness is the read values' own clock.
 */
import { TabshardError } from '../shared/errors.ts';
import type { Subscription } from './subscription.ts';
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
}

/** The scheduler session, as the loop uses it (client/session.ts implements it). */
export interface RunnerSession {
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

export interface RunnerEvent {
  state: RunnerState;
  lease?: RunnerLease;
  /** Totals of this worker so far. */
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
  /** Resolves after `ms` (setTimeout by default; tests pass a fake clock's). */
  sleep?: (ms: number) => Promise<void>;
  /** Eager SSP: how long a read waits for a lagging subscription before it pulls (default 2000 ms). */
  eagerWaitMs?: number;
  /** Eager SSP: subscriptions kept (per table and shard; the least recently used closes; default 8). */
  maxSubscriptions?: number;
}

/** Tasks of a dead lease are abandoned quietly: the scheduler has already handed them on. */
const ABANDON = new Set(['TS_ERR_LEASE_EXPIRED', 'TS_ERR_NOT_LEASED']);

export class TaskRunner<S extends RunnerShard = RunnerShard> {
  private stopped = false;
  private readonly totals = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly slowdown: number;
  /** Eager SSP subscriptions by `${table}#${shard}`, least recently used first. */
  private readonly subs = new Map<string, Subscription>();

  constructor(private readonly opts: RunnerOptions<S>) {
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.slowdown = opts.slowdown ?? 1;
    if (!(this.slowdown >= 1 && Number.isFinite(this.slowdown)))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `slowdown must be a finite number ≥ 1, not ${opts.slowdown}`);
  }

  /** Stops after the current task. */
  stop(): void {
    this.stopped = true;
  }

  /** Runs tasks until the job is done or `stop()`; resolves with this worker's totals. */
  async run(): Promise<RunnerEvent> {
    const { worker, session, app } = this.opts;
    const audit = this.opts.auditTable ? worker.table(this.opts.auditTable) : null;
    while (!this.stopped) {
      await this.opts.gate?.();
      this.emit('waiting');
      const t0 = this.now();
      const lease = await session.next();
      const waitMs = this.now() - t0;
      this.totals.waitMs += waitMs;
      if (!lease) {
        this.closeSubscriptions();
        return this.emit('done');
      }
      try {
        worker.setTask(lease.task, lease.attempt);
        const shard = await app.shard(lease.shard);
        const specs = app.pulls(shard);
        const tables = specs.map((p) => worker.table(p.table));
        this.emit('pulling', lease);
        const p0 = this.now();
        const read = await Promise.all(specs.map((p, i) => this.read(lease, shard.index, p, tables[i])));
        const values = read.map((r) => r.values);
        const dataClock = Math.min(...read.map((r) => r.clock ?? lease.clock ?? lease.iteration));
        for (const v of values) this.totals.pulledValues += v.length;
        this.emit('computing', lease);
        const c0 = this.now();
        const g = await app.gradient(shard, values);
        let computeMs = this.now() - c0;
        if (g.grads.length !== specs.length)
          throw new TabshardError('TS_ERR_VALUE_LENGTH', `${g.grads.length} gradients for ${specs.length} tables`);
        if (this.slowdown > 1) {
          const rest = (this.slowdown - 1) * (this.now() - p0);
          await this.sleep(rest);
          computeMs += rest;
        }
        if (lease.stalenessLr) scale(g.grads, 1 / (1 + Math.max(0, lease.iteration - dataClock)));
        this.emit('pushing', lease);
        const pushes = specs.map((p, i) => worker.wait(tables[i].push(p.keys, g.grads[i])));
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
    this.closeSubscriptions();
    return this.emit('stopped');
  }

  /** Closes the eager SSP subscriptions (the loop calls it when it ends). */
  closeSubscriptions(): void {
    for (const s of this.subs.values()) s.close();
    this.subs.clear();
  }

  /**
   * One table's values for a task: pulled, or under eager SSP read from the subscription (a copy:
   * publications overwrite the subscription's array). `clock` is the read values' clock when
   * known (eager reads), else undefined (a pull sees at least the lease's clock).
   */
  private async read(
    lease: RunnerLease,
    shard: number,
    p: PullSpec,
    table: ReturnType<Worker['table']>,
  ): Promise<{ values: Float32Array; clock?: number }> {
    const { worker } = this.opts;
    if (!lease.eager) return { values: (await worker.wait(table.pull(p.keys))) as Float32Array };
    const key = `${p.table}#${shard}`;
    const sub = this.subs.get(key);
    if (sub) {
      this.subs.delete(key);
      this.subs.set(key, sub); // most recently used
      const min = lease.tau === null || lease.tau === undefined ? 0 : Math.max(0, lease.iteration - lease.tau);
      const hit = sub.values(min) ?? (await this.within(sub.ready(min), this.opts.eagerWaitMs ?? 2000));
      if (hit) return { values: hit.slice(), clock: sub.clock };
    }
    const values = (await worker.wait(table.pull(p.keys))) as Float32Array;
    if (!sub) {
      this.subs.set(key, table.subscribe(p.keys));
      while (this.subs.size > (this.opts.maxSubscriptions ?? 8)) {
        const [oldest, s] = this.subs.entries().next().value as [string, Subscription];
        s.close();
        this.subs.delete(oldest);
      }
    }
    return { values };
  }

  /** `p`'s value, or null when it rejects or takes longer than `ms` (the timer is cleared either way). */
  private within<T>(p: Promise<T>, ms: number): Promise<T | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    return Promise.race([p.catch(() => null), late]).finally(() => clearTimeout(timer));
  }

  private emit(state: RunnerState, lease?: RunnerLease, loss?: number): RunnerEvent {
    const ev: RunnerEvent = { state, lease, ...this.totals, loss };
    this.opts.onevent?.(ev);
    return ev;
  }
}

const ONE = new Float32Array([1]);

/** Multiplies every gradient by `f` in place (f = 1 leaves them untouched). */
function scale(grads: Float32Array[], f: number): void {
  if (f === 1) return;
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= f;
}
