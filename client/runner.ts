/**
 * The worker loop (docs/workers.md), the same for a browser tab and a headless Node worker:
 * lease a task from the scheduler, get its shard (cached), read the shard's working set from each
 * of the app's tables, compute the gradient, push it under the task's stamp, report the task
 * done once the pushes are acknowledged. Each piece it needs is named by a small interface and
 * passed in, so the page, the Node CLI and the tests assemble it from what they have (a Web
 * Worker or in-process tfjs, IndexedDB or memory for shards).
 *
 * The loop overlaps (`prefetch: 1`, the default): as soon as a task's pushes are sent, it asks
 * for the next lease, and the next task's reads go out as soon as that lease arrives, while the
 * pushes are still in flight and before the TASK_DONE, which waits for their ACKs. A read is sent
 * after the pushes on the same connection to each node, and a node serves a connection's
 * requests in order, so it sees them: the next task reads exactly what it would have read had
 * the loop waited (one worker trains as the tasks-in-turn baseline does). `prefetch: 0` runs one
 * task at a time. Reading further ahead (a task's reads before the previous task's pushes) was
 * measured and left out: docs/workers.md.
 *
 * Two options of the consistency study (ARCHITECTURE §5, §8) live here, because they are what a
 * worker does with its lease: a staleness-aware learning rate (the push is scaled by
 * 1 / (1 + s), s = the lease's iteration − the slowest clock when it was granted), and a
 * configurable slowdown that makes this worker an f× straggler (it rests (f − 1)× the time it
 * waited for its reads and computed before it pushes, as a device f× slower would).
 *
 * Eager SSP reads (client/runner-reads.ts): with the lease's `eager`, a subscribed shard's values
 * are read from the subscription the servers publish to; the staleness is then the values' own
 * clock. What each task cost is reported through `ontask` (client/task-times.ts).
 */
import { TabshardError, toTabshardError } from '../shared/errors.ts';
import { type ReadIo, type ReadResult, TaskReads } from './runner-reads.ts';
import type {
  GradientResult,
  PullSpec,
  RunnerEvent,
  RunnerLease,
  RunnerOptions,
  RunnerShard,
  RunnerState,
} from './runner-types.ts';
import type { TaskTimes } from './task-times.ts';
import type { KvTable } from './worker.ts';

export type {
  GradientResult,
  PullSpec,
  RunnerApp,
  RunnerEvent,
  RunnerLease,
  RunnerOptions,
  RunnerSession,
  RunnerShard,
  RunnerState,
} from './runner-types.ts';

/** Tasks of a dead lease are abandoned quietly: the scheduler has already handed them on. */
const ABANDON = new Set(['TS_ERR_LEASE_EXPIRED', 'TS_ERR_NOT_LEASED']);

/** A task whose lease arrived and whose reads are sent. */
interface Started<S> {
  lease: RunnerLease;
  shard: S;
  specs: PullSpec[];
  tables: KvTable[];
  reads: Promise<ReadResult[]>;
  times: TaskTimes;
  /** When the gate was entered and left before its LEASE, when the lease came, when its reads went out. */
  gateAt: number;
  askedAt: number;
  gotAt: number;
  readsAt: number;
  /** When its pushes started to go out. */
  pushAt: number;
}

export class TaskRunner<S extends RunnerShard = RunnerShard> {
  private stopped = false;
  private readonly totals = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly slowdown: number;
  private readonly reads: TaskReads;
  /** The loop's own step, re-sent with new totals when a task finishes in the background. */
  private state: { state: RunnerState; lease?: RunnerLease } = { state: 'waiting' };
  /** Leased tasks not yet done nor abandoned. */
  private inFlight = 0;
  /** A task finishing in the background failed (not an abandon): the loop rethrows it. */
  private failed: { err: unknown } | null = null;
  private onfail: ((err: unknown) => void) | null = null;
  private readonly failure = new Promise<never>((_, reject) => {
    this.onfail = reject;
  });

  constructor(private readonly opts: RunnerOptions<S>) {
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.slowdown = opts.slowdown ?? 1;
    if (!(this.slowdown >= 1 && Number.isFinite(this.slowdown)))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `slowdown must be a finite number ≥ 1, not ${opts.slowdown}`);
    if (opts.prefetch !== undefined && opts.prefetch !== 0 && opts.prefetch !== 1)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `prefetch must be 0 or 1, not ${opts.prefetch}`);
    this.reads = new TaskReads({ eagerWaitMs: opts.eagerWaitMs, maxSubscriptions: opts.maxSubscriptions });
    this.failure.catch(() => {});
  }

  /** No LEASE is sent after this; the tasks already leased (or asked for) finish, then `run` resolves. */
  stop(): void {
    this.stopped = true;
  }

  /** Runs tasks until the job is done or `stop()`; resolves with this worker's totals. */
  async run(): Promise<RunnerEvent> {
    const { worker, app } = this.opts;
    const prefetch = this.opts.prefetch ?? 1;
    const audit = this.opts.auditTable ? worker.table(this.opts.auditTable) : null;
    const finishing = new Set<Promise<void>>();
    /** Loop time is charged to tasks up to here: the last compute's end. */
    let mark = this.now();
    let ahead = this.stopped ? null : this.ask();
    let jobDone = false;
    while (ahead) {
      this.emit('waiting');
      const cur = await this.guard(ahead);
      ahead = null;
      if (!cur) {
        jobDone = true;
        break;
      }
      const { lease, times } = cur;
      try {
        this.emit('pulling', lease);
        const p0 = Math.max(mark, cur.readsAt);
        const read = await this.guard(cur.reads);
        times.pullMs = this.now() - cur.readsAt;
        const values = read.map((r) => r.values);
        const dataClock = Math.min(...read.map((r) => r.clock ?? lease.clock ?? lease.iteration));
        for (const v of values) this.totals.pulledValues += v.length;
        this.emit('computing', lease);
        const c0 = this.now();
        const g = await this.guard(app.gradient(cur.shard, values));
        if (g.grads.length !== cur.specs.length)
          throw new TabshardError('TS_ERR_VALUE_LENGTH', `${g.grads.length} gradients for ${cur.specs.length} tables`);
        if (this.slowdown > 1) await this.sleep((this.slowdown - 1) * (this.now() - p0));
        const c1 = this.now();
        this.charge(cur, mark, c0, c1);
        mark = c1;
        if (lease.stalenessLr) scale(g.grads, 1 / (1 + Math.max(0, lease.iteration - dataClock)));
        this.emit('pushing', lease);
        const pushes = this.push(cur, g.grads, audit);
        for (const p of pushes) p.catch(() => {}); // finish() reports them
        const fin = this.finish(cur, pushes, g);
        finishing.add(fin);
        fin.finally(() => finishing.delete(fin));
        if (prefetch === 0) await this.guard(fin);
      } catch (err) {
        if (!(err instanceof TabshardError) || !ABANDON.has(err.code)) throw err;
        this.abandoned(times);
      }
      if (!this.stopped) ahead = this.ask();
    }
    await this.guard(Promise.all(finishing));
    this.reads.close();
    return this.emit(jobDone ? 'done' : 'stopped');
  }

  /**
   * Sends a task's pushes (and its audit push) under its stamp. The stamp is set right before
   * and cleared right after, synchronously: pushes of other tasks never carry it.
   */
  private push(cur: Started<S>, grads: Float32Array[], audit: KvTable | null): Promise<unknown>[] {
    const { worker } = this.opts;
    const { lease, times } = cur;
    const f0 = worker.framesSent;
    cur.pushAt = this.now();
    const pushes: Promise<unknown>[] = [];
    worker.setTask(lease.task, lease.attempt);
    try {
      for (let i = 0; i < cur.specs.length; i++)
        pushes.push(worker.wait(cur.tables[i].push(cur.specs[i].keys, grads[i])));
      if (audit) pushes.push(worker.wait(audit.push({ begin: lease.task - 1, end: lease.task }, ONE)));
    } finally {
      worker.setTask(0, 0);
      times.frames += worker.framesSent - f0;
      times.sendMs += this.now() - cur.pushAt;
    }
    return pushes;
  }

  /** Closes the eager SSP subscriptions (the loop calls it when it ends). */
  closeSubscriptions(): void {
    this.reads.close();
  }

  /** Enters the gate, asks for a lease and sends its reads: the next task, or null when the job is done. */
  private ask(): Promise<Started<S> | null> {
    const p = (async () => {
      const gateAt = this.now();
      await this.opts.gate?.();
      const askedAt = this.now();
      const lease = await this.opts.session.next();
      const gotAt = this.now();
      if (!lease) return null;
      this.inFlight++;
      return this.begin(lease, gateAt, askedAt, gotAt);
    })();
    p.catch(() => {}); // the loop awaits it (or has already failed)
    return p;
  }

  /** Gets the lease's shard and sends its reads. */
  private async begin(lease: RunnerLease, gateAt: number, askedAt: number, gotAt: number): Promise<Started<S>> {
    const { worker, app } = this.opts;
    const times: TaskTimes = {
      task: lease.task,
      attempt: lease.attempt,
      shard: lease.shard,
      iteration: lease.iteration,
      leaseMs: gotAt - askedAt,
      pullMs: 0,
      computeMs: 0,
      pushMs: 0,
      doneMs: 0,
      waitMs: 0,
      leaseWaitMs: 0,
      restMs: 0,
      cycleMs: 0,
      sendMs: 0,
      frames: 0,
    };
    const shard = await app.shard(lease.shard);
    const specs = app.pulls(shard);
    const tables = specs.map((p) => worker.table(p.table));
    const counted = <T>(send: () => T): T => {
      const f0 = worker.framesSent;
      const s0 = this.now();
      try {
        return send();
      } finally {
        times.frames += worker.framesSent - f0;
        times.sendMs += this.now() - s0;
      }
    };
    const io: ReadIo = {
      pull: (t, keys) => counted(() => worker.wait(t.pull(keys))) as Promise<Float32Array>,
      subscribe: (t, keys) => counted(() => t.subscribe(keys)),
    };
    const readsAt = this.now();
    const reads = Promise.all(specs.map((p, i) => this.reads.read(lease, shard.index, tables[i], p.keys, io)));
    reads.catch(() => {}); // the loop awaits it
    return { lease, shard, specs, tables, reads, times, gateAt, askedAt, gotAt, readsAt, pushAt: 0 };
  }

  /**
   * Charges the loop's time from `mark` (the previous compute's end) to `c1` (this one's) to
   * `cur`: the gate's rest, the compute (`c0` → `c1`, a straggler's rest included), and the rest
   * as wait, of which the part blocked on the LEASE.
   */
  private charge(cur: Started<S>, mark: number, c0: number, c1: number): void {
    const t = cur.times;
    t.computeMs = c1 - c0;
    t.restMs = Math.max(0, Math.min(cur.askedAt, c0) - Math.max(cur.gateAt, mark));
    t.waitMs = Math.max(0, c0 - mark - t.restMs);
    t.leaseWaitMs = Math.max(0, Math.min(cur.gotAt, c0) - Math.max(cur.askedAt, mark));
    t.cycleMs = c1 - mark;
  }

  /** Waits for a task's pushes to be acknowledged, then reports it done (in the background when overlapping). */
  private async finish(cur: Started<S>, pushes: Promise<unknown>[], g: GradientResult): Promise<void> {
    const { times, lease } = cur;
    try {
      await Promise.all(pushes);
      const d0 = this.now();
      times.pushMs = d0 - cur.pushAt;
      // The scheduler counts the time it held a LEASE as wait itself: the report leaves it out.
      const waitMs = times.waitMs - times.leaseWaitMs;
      await this.opts.session.done(lease, { examples: g.examples, computeMs: times.computeMs, waitMs, loss: g.loss });
      times.doneMs = this.now() - d0;
      this.totals.tasks++;
      this.totals.examples += g.examples;
      this.totals.computeMs += times.computeMs;
      this.totals.waitMs += times.waitMs;
      this.inFlight--;
      this.emit(this.state.state, this.state.lease, g.loss);
      this.opts.ontask?.(times);
    } catch (err) {
      if (err instanceof TabshardError && ABANDON.has(err.code)) this.abandoned(times);
      else this.fail(err);
    }
  }

  private abandoned(times: TaskTimes): void {
    times.abandoned = true;
    this.inFlight--;
    this.emit(this.state.state, this.state.lease);
    this.opts.ontask?.(times);
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = { err: err instanceof Error ? err : toTabshardError(err) };
    this.onfail?.(this.failed.err);
  }

  /** `p`, unless a task finishing in the background failed first (then that error). */
  private async guard<T>(p: Promise<T>): Promise<T> {
    this.rethrow();
    const v = await Promise.race([p, this.failure]);
    this.rethrow();
    return v;
  }

  private rethrow(): void {
    if (this.failed) throw this.failed.err;
  }

  private emit(state: RunnerState, lease?: RunnerLease, loss?: number): RunnerEvent {
    if (state !== 'done' && state !== 'stopped') this.state = { state, lease };
    const ev: RunnerEvent = { state, lease, inFlight: this.inFlight, ...this.totals, loss };
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
