/**
 * The scheduler of one job (docs/architecture.md §1, §5, §6; docs/workers.md): admits workers, hands
 * out (iteration, shard) tasks under leases as the consistency gate allows, holds LEASE requests
 * until a task may run, expires leases that miss their heartbeats, fences the server nodes
 * before a lost task runs again (so the dead attempt's pushes are refused), and counts every
 * task done exactly once.
 */
import { type Clock, realClock } from '../../shared/clock-source.ts';
import { TabshardError } from '../../shared/errors.ts';
import {
  encodeTask,
  type SchedHello,
  type TaskRef,
  type TaskReply,
  type TaskReport,
} from '../../shared/protocol/sched.ts';
import type { Conn } from '../../shared/transport/types.ts';
import type { Claims, TableGrant } from '../auth/capability.ts';
import { Backups } from './backups.ts';
import { Discipline } from './discipline.ts';
import { Session, type SessionHost } from './dispatch.ts';
import { ConsistencyGate } from './gate.ts';
import { Leases } from './leases.ts';
import { checkReceipts, type ReceiptChecker } from './receipts.ts';
import { applyResume, progressOf } from './resume.ts';
import { type Task, TaskQueue } from './tasks.ts';
import {
  type CheckedConfig,
  checkConfig,
  checkTau,
  type JobConfig,
  type JobState,
  type JobStatus,
  type ResumePoint,
  type SchedulerProgress,
  type TaskRecord,
} from './types.ts';
import { type Waiter, Waiters } from './waiters.ts';
import { WorkerBook } from './workers.ts';

export interface SchedulerDeps {
  clock?: Clock;
  /** Makes every server node refuse pushes of `task` from attempts below `attempt`. */
  fence(task: number, attempt: number): Promise<void>;
  /** Structured events (lease, return, fenced, fence-failed, done, iteration, …) for the log. */
  log?(ev: object): void;
  /** A lease is about to be granted: the driver records it durably (after a crash it is fenced). */
  granted?(task: number, attempt: number): void;
  /**
   * Capabilities (PROTOCOL.md §6.2): with these, each lease carries a signed task capability
   * and each session a read capability; without, none are issued (a cluster that checks none).
   */
  capabilities?: CapabilityIssuer;
  /**
   * Push receipts (PROTOCOL.md §6.3): with these, a TASK_DONE counts only when the receipts it
   * carries cover the task's pushes; without, every TASK_DONE of a live lease counts.
   */
  receipts?: ReceiptChecker;
}

/** Signs capabilities, and says what a task may push: its tables and their keys. */
export interface CapabilityIssuer {
  sign(claims: Claims): string;
  tables(task: { task: number; shard: number; iteration: number }): TableGrant[];
}

/** How long a read capability lives; a TASK reply renews it once half of that has passed. */
export const READ_CAPABILITY_MS = 10 * 60_000;

export class Scheduler {
  /** Called once per iteration when all its tasks (and all earlier iterations') are done, in order. */
  onIterationDone: ((iteration: number) => void) | null = null;
  /** Called once when every task of every iteration is done. */
  onDone: (() => void) | null = null;

  private readonly cfg: CheckedConfig;
  private readonly clock: Clock;
  private readonly queue: TaskQueue;
  private readonly gate: ConsistencyGate;
  private readonly workers = new WorkerBook();
  private readonly sessions = new Set<Session>();
  private readonly waiters: Waiters;
  private readonly host: SessionHost;
  private readonly leases: Leases;
  private readonly backups: Backups;
  private state: JobState = 'running';
  /** The shard each worker was last granted (affinity). */
  private readonly lastShard = new Map<number, number>();
  /** Holds on new leases (checkpoints) and who waits for the leases out to end. */
  private holds = 0;
  private readonly discipline: Discipline;
  private quietWaiters: Array<() => void> = [];
  /** When each session's read capability expires (ms since the epoch; capabilities use wall time). */
  private readonly readExpiry = new WeakMap<Session, number>();

  constructor(
    cfg: JobConfig,
    private readonly deps: SchedulerDeps,
  ) {
    this.cfg = checkConfig(cfg);
    this.clock = deps.clock ?? realClock;
    this.queue = new TaskQueue(this.cfg.shards, this.cfg.iterations);
    this.gate = new ConsistencyGate(this.cfg.shards, this.cfg.iterations, this.cfg.tau);
    this.leases = new Leases({
      clock: this.clock,
      queue: this.queue,
      leaseMs: this.cfg.leaseMs,
      fenceRetryMs: this.cfg.fenceRetryMs,
      fence: (task, attempt) => deps.fence(task, attempt),
      log: (ev) => this.log(ev),
      stopped: () => this.state === 'stopped',
      requeued: () => this.pump(),
      lost: () => this.checkQuiet(),
      // A lost lease takes its task's backup with it: the fence then covers both attempts.
      losing: (t) => {
        const b = this.backups.drop(t, 'primary-lost');
        if (b) t.attempt = b.attempt;
      },
    });
    const sessions = this.sessions;
    this.discipline = new Discipline(this.clock, this.cfg.benchMs, function* () {
      for (const s of sessions) yield s.worker;
    });
    this.backups = new Backups({ clock: this.clock, leaseMs: this.cfg.leaseMs, log: (ev) => this.log(ev) });
    this.waiters = new Waiters(this.clock, this.cfg.holdMs, (s, ms) => {
      if (s.worker !== null) this.workers.waited(s.worker, ms);
    });
    this.host = {
      hello: (s, h) => this.hello(s, h),
      lease: (s, id) => this.lease(s, id),
      heartbeat: (s, r) => this.heartbeat(s, r),
      taskDone: (s, r) => this.taskDone(s, r),
      closed: (s) => this.closed(s),
    };
  }

  /**
   * Resumes from a checkpoint (before any session is served, once the servers hold the
   * checkpoint's tables): marks its done tasks done and fences every other task that was ever
   * leased (before the checkpoint or after it, up to the crash) at a new attempt before it runs
   * again.
   */
  resumeFrom(r: ResumePoint): void {
    if (this.queue.started > 0 || this.sessions.size > 0)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'resume before the scheduler hands out anything');
    const { queue, gate, leases } = this;
    const refenced = applyResume(r, this.cfg.job, { queue, gate, leases });
    this.log({ ev: 'resumed', done: r.progress.done.length, refenced, clock: this.gate.iterationsDone });
    if (this.gate.complete) this.state = 'done';
  }

  /** What a checkpoint keeps (take it while `hold` is in force: no lease is out). */
  progress(): SchedulerProgress {
    return progressOf(this.queue);
  }

  /** Holds new leases (LEASEs wait) until the returned function is called (once; later calls do nothing). */
  pauseGrants(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.pump();
    };
  }

  /**
   * Holds new leases (LEASEs wait) until the returned release is called; resolves once no lease
   * is out, so the servers' state is a consistent cut: every task done or not begun by a live
   * attempt (a checkpoint is taken then).
   */
  async hold(): Promise<() => void> {
    const release = this.pauseGrants();
    await new Promise<void>((resolve) => {
      this.quietWaiters.push(resolve);
      this.checkQuiet();
    });
    return release;
  }

  private checkQuiet(): void {
    if (this.quietWaiters.length === 0 || (this.queue.leased.size > 0 && this.state !== 'stopped')) return;
    for (const resolve of this.quietWaiters.splice(0)) resolve();
  }

  /** Serves one worker session on `conn`. */
  serve(conn: Conn): void {
    if (conn.closed) return;
    this.sessions.add(new Session(conn, this.host));
  }

  /** Changes the consistency model; applies from the next lease decision (waiting LEASEs included). */
  setTau(tau: number | null): void {
    this.gate.tau = checkTau(tau);
    this.log({ ev: 'tau', tau });
    this.pump();
  }

  /** Turns eager SSP and staleness-aware learning rates on or off; applies from the next grant. */
  setOptions(o: { eager?: boolean; stalenessLr?: boolean }): void {
    if (o.eager !== undefined) this.cfg.eager = o.eager;
    if (o.stalenessLr !== undefined) this.cfg.stalenessLr = o.stalenessLr;
    this.log({ ev: 'options', eager: this.cfg.eager, stalenessLr: this.cfg.stalenessLr });
  }

  /** Whether the servers are to publish fresh values when the slowest clock advances. */
  get eager(): boolean {
    return this.cfg.eager;
  }

  /** The slowest clock: iterations 0 … clock − 1 are complete. */
  get slowestClock(): number {
    return this.gate.iterationsDone;
  }

  /** Stops handing out tasks (LEASEs are held); leases already out keep running. */
  pause(): void {
    if (this.state === 'running') this.setState('paused');
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.setState('running');
    this.pump();
  }

  /** Ends the job: LEASEs get `{done: true}`, heartbeats and TASK_DONEs TS_ERR_JOB_DONE; no timers remain. */
  stop(): void {
    if (this.state === 'stopped' || this.state === 'done') return;
    this.setState('stopped');
    this.leases.clearTimers();
    this.backups.clearTimers();
    this.pump();
    this.checkQuiet();
  }

  /** Revokes every lease of `worker` (its tasks return, fenced) and closes its sessions. */
  evict(worker: number): void {
    this.log({ ev: 'evict', worker });
    for (const t of [...this.queue.leased]) if (t.holder === worker) this.leases.lose(t, 'evicted');
    this.backups.dropWhere((b) => b.worker === worker, 'evicted');
    for (const s of [...this.sessions]) if (s.worker === worker) s.close();
  }

  status(): JobStatus {
    const now = this.clock.now();
    const leases = new Map<number, number>();
    for (const t of this.queue.leased) if (t.holder !== null) leases.set(t.holder, (leases.get(t.holder) ?? 0) + 1);
    for (const [, b] of this.backups.entries()) leases.set(b.worker, (leases.get(b.worker) ?? 0) + 1);
    const inFlight: JobStatus['inFlight'] = [];
    const lastStarted = Math.floor((this.queue.started - 1) / this.cfg.shards);
    for (let i = this.gate.iterationsDone; i <= lastStarted && i < this.cfg.iterations; i++)
      inFlight.push({ iteration: i, done: this.gate.doneIn(i) });
    const { job, name, app, shards, iterations } = this.cfg;
    return {
      job,
      name,
      app,
      state: this.state,
      tau: this.gate.tau,
      shards,
      iterations,
      iterationsDone: this.gate.iterationsDone,
      inFlight,
      tasks: this.queue.stateCounts(),
      reassignments: this.leases.reassignments,
      ...(this.cfg.backups ? { backups: { granted: this.backups.granted, won: this.backups.won } } : {}),
      waiting: this.waiters.size,
      workers: this.workers.status(now, leases),
    };
  }

  tasks(): TaskRecord[] {
    return this.queue.records();
  }

  // ---- session requests ----

  private hello(s: Session, h: SchedHello) {
    // Ids are the scheduler's: an old id is kept only with the secret its Welcome carried, so no
    // session can take over another worker's leases (or credit) by naming its id.
    const { worker, resume } = this.workers.admit(
      this.clock.now(),
      h.worker,
      h.resume,
      h.agent ?? '',
      h.transport ?? '',
    );
    s.worker = worker;
    this.log({ ev: 'hello', worker, agent: h.agent, transport: h.transport });
    const { job, shards, iterations, leaseMs, heartbeatMs, app } = this.cfg;
    const read = this.readCapability(s, true);
    const { maxLeases } = this.cfg;
    return { worker, resume, job, shards, iterations, leaseMs, heartbeatMs, app, maxLeases, ...(read ? { read } : {}) };
  }

  /** A fresh read capability for `s` when it has none or its own is past half its life (`force`: always). */
  private readCapability(s: Session, force = false): string | undefined {
    const issuer = this.deps.capabilities;
    if (!issuer || s.worker === null) return undefined;
    const now = Date.now();
    const exp = this.readExpiry.get(s);
    if (!force && exp !== undefined && exp - now > READ_CAPABILITY_MS / 2) return undefined;
    this.readExpiry.set(s, now + READ_CAPABILITY_MS);
    return issuer.sign({ kind: 'read', job: this.cfg.job, worker: s.worker, exp: now + READ_CAPABILITY_MS });
  }

  private lease(s: Session, requestId: number): void {
    const worker = s.requireWorker();
    this.workers.seen(worker, this.clock.now());
    let held = this.waiters.countSession(s);
    for (const t of this.queue.leased) if (t.holder === worker) held++;
    held += this.backups.heldBy(worker);
    if (held >= this.cfg.maxLeases)
      throw new TabshardError('TS_ERR_LEASE_LIMIT', `worker ${worker} holds or awaits ${held} leases`);
    this.waiters.add(s, requestId, (w) => this.reply(w.session, w.requestId, { wait: 0 }));
    this.pump();
  }

  private heartbeat(s: Session, r: TaskRef): void {
    const t = this.current(s, r);
    if (t.state === 'done') return;
    const backup = r.attempt === t.attempt ? undefined : this.backups.of(t);
    const ran = this.clock.now() - (backup ? backup.grantedAt : t.grantedAt);
    const bound = this.overdueMs();
    if (ran > bound) {
      // Held past its task's expected time, heartbeats or not: the task goes back (fenced), to another worker.
      this.giveUp(t, 'overdue', s.requireWorker());
      throw new TabshardError('TS_ERR_LEASE_EXPIRED', `task ${t.task} ran ${ran} ms, past its bound of ${bound} ms`);
    }
    if (backup) this.backups.renew(t, this.backupExpired);
    else this.leases.renew(t);
    this.workers.heartbeat(s.requireWorker(), this.clock.now());
  }

  /** How long a lease may run: `overdueFactor` × the median recent task, at least the floor, at most maxLeaseMs. */
  private overdueMs(): number {
    const { maxLeaseMs, overdueFactor, overdueFloorMs } = this.cfg;
    const median = this.leases.medianTaskMs();
    if (median === null) return maxLeaseMs;
    return Math.min(maxLeaseMs, Math.max(overdueFloorMs, overdueFactor * median));
  }

  private taskDone(s: Session, r: TaskReport): boolean {
    const t = this.current(s, r);
    if (t.state === 'done') return true;
    const worker = s.requireWorker();
    if (this.deps.receipts)
      try {
        checkReceipts(this.cfg.job, t, r.attempt, r.receipts ?? [], this.deps.receipts);
      } catch (err) {
        // Not counted: the task goes back (fenced) and runs again, on another worker.
        this.workers.unapplied(worker);
        this.giveUp(t, 'unapplied', worker);
        this.pump();
        throw err;
      }
    // The first of a task's two attempts to finish counts; the other's later reports are refused.
    const backup = r.attempt === t.attempt ? undefined : this.backups.drop(t, 'won');
    if (backup) t.attempt = backup.attempt;
    else this.backups.drop(t, 'lost');
    this.leases.finish(t, backup ? backup.grantedAt : t.grantedAt);
    t.doneAttempt = r.attempt;
    t.doneBy = worker;
    this.workers.taskDone(worker, this.clock.now(), r);
    this.log({ ev: 'done', task: t.task, attempt: r.attempt, worker, examples: r.examples, loss: r.loss });
    for (const i of this.gate.taskDone(t.iteration)) {
      this.log({ ev: 'iteration', iteration: i });
      this.callback(() => this.onIterationDone?.(i));
    }
    if (this.gate.complete) {
      this.setState('done');
      this.callback(() => this.onDone?.());
    }
    this.pump();
    return false;
  }

  /**
   * The task `r` names if `s`'s worker holds its current lease, or if that attempt already
   * finished it (a repeated HEARTBEAT/TASK_DONE); otherwise the coded refusal.
   */
  private current(s: Session, r: TaskRef): Task {
    const worker = s.requireWorker();
    if (this.state === 'stopped') throw new TabshardError('TS_ERR_JOB_DONE', 'the job was stopped');
    const t = this.queue.get(r.task);
    if (!t) throw new TabshardError('TS_ERR_NOT_LEASED', `no task ${r.task} in job ${this.cfg.job}`);
    if (r.attempt < t.attempt)
      throw new TabshardError('TS_ERR_LEASE_EXPIRED', `task ${r.task} attempt ${r.attempt} < ${t.attempt}`);
    if (t.state === 'done' && t.doneAttempt === r.attempt) return t;
    const backup = t.state === 'leased' ? this.backups.of(t) : undefined;
    if (backup && r.attempt === backup.attempt) {
      if (backup.worker !== worker)
        throw new TabshardError('TS_ERR_NOT_LEASED', `task ${r.task} attempt ${r.attempt}, worker ${worker}`);
      return t;
    }
    if (r.attempt > t.attempt || t.state !== 'leased' || t.holder !== worker)
      throw new TabshardError('TS_ERR_NOT_LEASED', `task ${r.task} attempt ${r.attempt}, worker ${worker}`);
    return t;
  }

  /**
   * Takes a lease away from a worker that misbehaved with it: the task runs again, on another
   * worker if one is live; a worker that held it overdue is benched (`benchMs`).
   */
  private giveUp(t: Task, reason: 'overdue' | 'unapplied', worker: number): void {
    this.discipline.misbehaved(t, reason, worker);
    this.leases.lose(t, reason);
  }

  /** A backup lease that missed its heartbeats ends; its task's first lease runs on. */
  private readonly backupExpired = (t: Task): void => {
    this.backups.drop(t, 'expired');
    this.pump();
  };

  private closed(s: Session): void {
    this.sessions.delete(s);
    this.waiters.dropSession(s);
    if (s.worker === null) return;
    this.workers.left(s.worker);
    this.log({ ev: 'close', worker: s.worker });
    if (this.cfg.releaseOnClose && this.state !== 'stopped') {
      for (const t of [...this.queue.leased]) if (t.session === s) this.leases.lose(t, 'closed');
      this.backups.dropWhere((b) => b.session === s, 'closed');
      this.pump();
    }
  }

  // ---- handing out tasks ----

  /** Hands runnable tasks to held LEASEs in arrival order, or `{done: true}` once the job is over. */
  private pump(): void {
    this.checkQuiet();
    if (this.state === 'done' || this.state === 'stopped') {
      for (const w of this.waiters.takeAll()) this.reply(w.session, w.requestId, { done: true });
      return;
    }
    if (this.state === 'paused' || this.holds > 0) return;
    // In arrival order; a LEASE passes over a task its worker must leave to another (`avoids`).
    for (const w of this.waiters.all()) {
      const worker = w.session.requireWorker();
      if (this.discipline.sitsOut(worker)) continue;
      // Affinity under eager SSP: a worker gets the shard it ran last when that shard is next up,
      // so its subscription to the shard's keys (published as the clock advances) serves the read.
      const t = this.queue.take(
        (i) => this.gate.open(i),
        this.cfg.eager ? this.lastShard.get(worker) : undefined,
        (x) => this.discipline.avoids(x, worker),
      );
      if (t) this.grant(w, t, worker);
      else if (this.cfg.backups) this.backUp(w, worker);
      else if (!this.queue.avoiding) return; // nothing runnable for anyone
    }
  }

  /**
   * Nothing is runnable for `worker`, whose LEASE waits: leases it a task that has run past the
   * backup bound (backups.ts), or sets a timer for when one will have.
   */
  private backUp(w: Waiter, worker: number): void {
    const median = this.leases.medianTaskMs();
    if (median === null) return; // no task has finished: nothing to compare with yet
    const after = Math.max(this.cfg.backupFloorMs, this.cfg.backupFactor * median);
    const { task, dueIn } = this.backups.pick(this.queue.leased, worker, after, (t) => t.avoid?.has(worker) ?? false);
    if (task) this.grant(w, task, worker, true);
    else if (dueIn !== null) this.backups.wakeIn(dueIn, () => this.pump());
  }

  /** Leases `t` to the waiting LEASE `w` of `worker`: its lease, or (`backup`) its second one. */
  private grant(w: Waiter, t: Task, worker: number, backup = false): void {
    this.waiters.remove(w);
    this.deps.granted?.(t.task, backup ? t.attempt + 1 : t.attempt);
    const attempt = backup
      ? this.backups.grant(t, worker, w.session, this.backupExpired)
      : this.leases.grant(t, worker, w.session);
    if (!backup) this.lastShard.set(worker, t.shard);
    const { task, shard, iteration } = t;
    const { leaseMs, eager, stalenessLr, traffic } = this.cfg;
    const issuer = this.deps.capabilities;
    const cap = issuer?.sign({
      kind: 'task',
      job: this.cfg.job,
      worker,
      task,
      attempt,
      tables: issuer.tables(t),
      exp: Date.now() + this.cfg.maxLeaseMs,
    });
    const read = this.readCapability(w.session);
    this.reply(w.session, w.requestId, {
      task,
      attempt,
      shard,
      iteration,
      leaseMs,
      clock: this.gate.iterationsDone,
      tau: this.gate.tau,
      ...(eager ? { eager } : {}),
      ...(stalenessLr ? { stalenessLr } : {}),
      ...(traffic ? { traffic } : {}),
      ...(cap ? { cap } : {}),
      ...(read ? { read } : {}),
    });
  }

  // ---- helpers ----

  private reply(s: Session, requestId: number, r: TaskReply): void {
    s.reply(encodeTask(requestId, r, this.cfg.job));
  }

  private setState(state: JobState): void {
    this.state = state;
    this.log({ ev: 'state', state });
  }

  private callback(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log({ ev: 'callback-failed', error: String(err) });
    }
  }

  private log(ev: Record<string, unknown>): void {
    this.deps.log?.({ job: this.cfg.job, t: this.clock.now(), ...ev });
  }
}
