/**
 * The worker loop (docs/workers.md), the same for a browser tab and a headless Node worker:
 * lease a task from the scheduler, get its shard (cached), read the shard's working set from each
 * of the app's tables, compute the gradient, push it under the task's stamp, report the task
 * done once the pushes are acknowledged. Each piece it needs is named by a small interface and
 * passed in, so the page, the Node CLI and the tests assemble it from what they have (a Web
 * Worker or in-process tfjs, IndexedDB or memory for shards).
 *
 * The loop overlaps (`prefetch: 1`, the default): once a task is computed it asks for the next
 * lease (through the gate), sends the task's pushes, and sends the next task's reads as soon as
 * that lease is in, while the pushes are still in flight; the TASK_DONE waits for their ACKs in
 * the background. The reads go out after the pushes on each node's connection, and a node serves
 * a connection's requests in order, so they see them: the next task reads exactly what it would
 * have read had the loop waited (one worker trains as the tasks-in-turn baseline does).
 * `prefetch: 0` runs one task at a time. Reading further ahead (the next task's reads before
 * this one's pushes) was measured and left out: docs/workers.md.
 *
 * Two options of the consistency study (docs/architecture.md §5, §8) live here, because they are what a
 * worker does with its lease: a staleness-aware learning rate (the push is scaled by
 * 1 / (1 + s), s = the lease's iteration − the slowest clock when it was granted), and a
 * configurable slowdown that makes this worker an f× straggler (it rests (f − 1)× the time it
 * waited for its reads and computed before it pushes, as a device f× slower would), and a stall
 * (a rest of a fixed time every few tasks: the stragglers study's other worker).
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
import { blankTimes, chargeLoop, type TaskTimes } from './task-times.ts';
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

/**
 * Tasks of a dead lease are abandoned quietly: the scheduler has already handed them on. A task
 * capability lives as long as the scheduler lets a lease run (`maxLeaseMs`), so one that expired
 * (a task slower than that, e.g. behind a slow link) is a dead lease too.
 */
const ABANDON = new Set([
  'TS_ERR_LEASE_EXPIRED',
  'TS_ERR_NOT_LEASED',
  'TS_ERR_TASK_NOT_APPLIED',
  'TS_ERR_CAPABILITY_EXPIRED',
]);

/** A task whose lease arrived and whose reads are sent. */
interface Started<S> {
  lease: RunnerLease;
  shard: S;
  specs: PullSpec[];
  tables: KvTable[];
  reads: Promise<ReadResult[]>;
  times: TaskTimes;
  /** On the loop's clock: gate entered and left, LEASE replied, previous pushes sent, reads sent, own pushes started. */
  at: { gate: number; asked: number; got: number; sent: number; reads: number; push: number };
}

/** What `ask` resolves with when `stop()` came while it waited at the gate: no LEASE was sent. */
const STOPPED = Symbol('stopped');

export class TaskRunner<S extends RunnerShard = RunnerShard> {
  private stopped = false;
  private readonly totals = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly slowdown: number;
  /** Tasks computed so far (for `stall`). */
  private computed = 0;
  private readonly reads: TaskReads;
  /** The loop's own step, re-sent with new totals when a task finishes in the background. */
  private state: { state: RunnerState; lease?: RunnerLease } = { state: 'waiting' };
  /** Leased tasks not yet done nor abandoned. */
  private inFlight = 0;
  /** Tasks finishing in the background (their ACKs and TASK_DONE). */
  private readonly finishing = new Set<Promise<void>>();
  /** A task finishing in the background failed (not an abandon): `failure` rejects, the loop rethrows. */
  private failed: { err: unknown } | null = null;
  private onfail: (err: unknown) => void = () => {};
  private readonly failure = new Promise<never>((_, reject) => {
    this.onfail = reject;
  });

  constructor(private readonly opts: RunnerOptions<S>) {
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.slowdown = opts.slowdown ?? 1;
    if (!(this.slowdown >= 1 && Number.isFinite(this.slowdown)))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `slowdown must be a finite number ≥ 1, not ${opts.slowdown}`);
    const st = opts.stall;
    if (st && !(Number.isInteger(st.every) && st.every >= 1 && Number.isFinite(st.ms) && st.ms >= 0))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'stall needs every ≥ 1 (an integer) and ms ≥ 0');
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
    const overlap = (this.opts.prefetch ?? 1) === 1;
    const audit = this.opts.auditTable ? worker.table(this.opts.auditTable) : null;
    if (this.opts.session.read) worker.present(this.opts.session.read);
    const finishing = this.finishing;
    let mark = this.now(); // the loop's time is charged to tasks up to here: the last compute's end
    let ahead = this.stopped ? null : this.ask(Promise.resolve(mark));
    let jobDone = false;
    while (ahead) {
      this.emit('waiting');
      const cur = await this.guard(ahead);
      ahead = null;
      if (cur === STOPPED) break;
      if (!cur) {
        jobDone = true;
        break;
      }
      const { lease, times, at } = cur;
      try {
        this.emit('pulling', lease);
        const p0 = Math.max(mark, at.reads);
        const read = await this.guard(cur.reads);
        times.pullMs = this.now() - at.reads;
        const values = read.map((r) => r.values);
        const dataClock = Math.min(...read.map((r) => r.clock ?? lease.clock ?? lease.iteration));
        for (const v of values) this.totals.pulledValues += v.length;
        this.emit('computing', lease);
        const c0 = this.now();
        const g = await this.guard(app.gradient(cur.shard, values));
        if (g.grads.length !== cur.specs.length)
          throw new TabshardError('TS_ERR_VALUE_LENGTH', `${g.grads.length} gradients for ${cur.specs.length} tables`);
        if (this.slowdown > 1) await this.sleep((this.slowdown - 1) * (this.now() - p0));
        const stall = this.opts.stall;
        if (stall && ++this.computed % stall.every === 0) await this.sleep(stall.ms);
        const c1 = this.now();
        chargeLoop(times, { mark, gateAt: at.gate, askedAt: at.asked, gotAt: at.got, sentAt: at.sent, c0, c1 });
        mark = c1;
        if (lease.stalenessLr) scale(g.grads, 1 / (1 + Math.max(0, lease.iteration - dataClock)));
        this.emit('pushing', lease);
        // The next LEASE goes out first (its round trip overlaps sending the pushes); the next
        // task's reads wait until the pushes are sent, so they follow them on every connection.
        let sent: (at: number) => void = () => {};
        if (overlap && !this.stopped) ahead = this.ask(new Promise<number>((resolve) => (sent = resolve)));
        let pushes: Promise<unknown>[];
        try {
          pushes = this.push(cur, g.grads, audit);
        } finally {
          sent(this.now());
        }
        const fin = this.finish(cur, pushes, g);
        finishing.add(fin);
        fin.finally(() => finishing.delete(fin));
        if (!overlap) await this.guard(fin);
      } catch (err) {
        if (!(err instanceof TabshardError) || !ABANDON.has(err.code)) throw err;
        this.abandoned(times);
      }
      if (!this.stopped && !ahead) ahead = this.ask(Promise.resolve(this.now()));
    }
    await this.guard(Promise.all(finishing));
    this.reads.close();
    return this.emit(jobDone ? 'done' : 'stopped');
  }

  /** Closes the eager SSP subscriptions (the loop calls it when it ends). */
  closeSubscriptions(): void {
    this.reads.close();
  }

  /**
   * Enters the gate, sends a LEASE (at once, without a gate), and once `sent` resolves (the
   * previous pushes are out, at that time) gets the shard and sends the reads: the next task,
   * or null when the job is done.
   */
  private ask(sent: Promise<number>): Promise<Started<S> | null | typeof STOPPED> {
    const p = (async () => {
      const gate = this.now();
      if (this.opts.gate) await this.opts.gate();
      // The scheduler refuses a LEASE past its cap (TS_ERR_LEASE_LIMIT): while as many tasks as
      // it allows are still finishing, the next LEASE waits for one of them.
      const cap = this.opts.session.maxLeases ?? Number.POSITIVE_INFINITY;
      while (this.inFlight + 1 > cap && this.finishing.size > 0) await Promise.race(this.finishing);
      // stop() while the gate was closed (paused, resting) or a lease slot busy: no new LEASE.
      if (this.stopped) return STOPPED;
      const asked = this.now();
      const lease = await this.opts.session.next();
      const got = this.now();
      if (!lease) return null;
      // Capabilities go out before the task's reads and pushes on every node connection.
      if (lease.read) this.opts.worker.present(lease.read);
      if (lease.cap) this.opts.worker.present(lease.cap, lease.task);
      this.inFlight++;
      const times = blankTimes(lease);
      times.leaseMs = got - asked;
      const shard = await this.opts.app.shard(lease.shard);
      const at = { gate, asked, got, sent: await sent, reads: 0, push: 0 };
      return this.begin(lease, shard, times, at);
    })();
    p.catch(() => {}); // the loop awaits it (or has already failed)
    return p;
  }

  /** Sends a task's reads, counting the frames and time of the calls that send them. */
  private begin(lease: RunnerLease, shard: S, times: TaskTimes, at: Started<S>['at']): Started<S> {
    const { worker, app } = this.opts;
    const specs = app.pulls(shard);
    const tables = specs.map((p) => worker.table(p.table));
    const asks = { half: lease.traffic?.pullHalf, compress: lease.traffic?.compress };
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
      pull: (t, keys) => counted(() => worker.wait(t.pull(keys, asks))) as Promise<Float32Array>,
      subscribe: (t, keys) => counted(() => t.subscribe(keys, asks)),
    };
    at.reads = this.now();
    const reads = Promise.all(
      specs.map((p, i) =>
        p.pushOnly ? { values: new Float32Array(0) } : this.reads.read(lease, shard.index, tables[i], p.keys, io),
      ),
    );
    reads.catch(() => {}); // the loop awaits it
    return { lease, shard, specs, tables, reads, times, at };
  }

  /** Sends a task's pushes (and its audit push), each stamped with the task explicitly. */
  private push(cur: Started<S>, grads: Float32Array[], audit: KvTable | null): Promise<unknown>[] {
    const { worker } = this.opts;
    const { lease, times, at } = cur;
    const f0 = worker.framesSent;
    at.push = this.now();
    const pushes: Promise<unknown>[] = [];
    const task = { task: lease.task, attempt: lease.attempt, worker: this.opts.session.worker };
    const t = lease.traffic;
    const how = { task, codec: t?.push, compress: t?.compress, threshold: t?.threshold, thresholdRms: t?.thresholdRms };
    try {
      for (let i = 0; i < cur.specs.length; i++)
        pushes.push(worker.wait(cur.tables[i].push(cur.specs[i].keys, grads[i], how)));
      if (audit) pushes.push(worker.wait(audit.push({ begin: lease.task - 1, end: lease.task }, ONE, { task })));
    } finally {
      times.frames += worker.framesSent - f0;
      times.sendMs += this.now() - at.push;
    }
    for (const p of pushes) p.catch(() => {}); // finish() reports them
    return pushes;
  }

  /** Waits for a task's pushes to be acknowledged, then reports it done (in the background when overlapping). */
  private async finish(cur: Started<S>, pushes: Promise<unknown>[], g: GradientResult): Promise<void> {
    const { times, lease } = cur;
    try {
      await Promise.all(pushes).finally(() => this.opts.worker.forgetTask(lease.task));
      const d0 = this.now();
      times.pushMs = d0 - cur.at.push;
      // The scheduler counts the time it held a LEASE as wait itself: the report leaves it out.
      const waitMs = times.waitMs - times.leaseWaitMs;
      const receipts = this.opts.worker.takeReceipts(lease.task, lease.attempt);
      await this.opts.session.done(lease, {
        examples: g.examples,
        computeMs: times.computeMs,
        waitMs,
        loss: g.loss,
        ...(receipts.length > 0 ? { receipts } : {}),
      });
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
      else if (!this.failed) {
        this.failed = { err: err instanceof Error ? err : toTabshardError(err) };
        this.onfail(this.failed.err);
      }
    }
  }

  private abandoned(times: TaskTimes): void {
    times.abandoned = true;
    this.inFlight--;
    this.emit(this.state.state, this.state.lease);
    this.opts.ontask?.(times);
  }

  /** `p`, unless a task finishing in the background failed first (then that error). */
  private async guard<T>(p: Promise<T>): Promise<T> {
    const v = await Promise.race([p, this.failure]);
    if (this.failed) throw this.failed.err;
    return v;
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

/** `MS:EVERY` (the worker's `--stall`, the page's `?stall=`): rest MS ms after every EVERY-th task; TS_ERR_INVALID_ARGUMENT otherwise. */
export function parseStall(v: string): { ms: number; every: number } {
  const m = /^(\d+):(\d+)$/.exec(v);
  if (!m || Number(m[2]) < 1)
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      `stall must be MS:EVERY (rest MS ms after every EVERY-th task), not ${v}`,
    );
  return { ms: Number(m[1]), every: Number(m[2]) };
}
