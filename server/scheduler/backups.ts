/**
 * Backup tasks (docs/architecture.md §8; Chen et al. 2016, "Revisiting distributed synchronous
 * SGD"): when LEASEs wait with nothing runnable because the job waits on tasks still out, a task
 * that has run past `backupFactor` × the median task time (and at least `backupFloorMs`) is
 * leased a second time, to the idle worker, as the next attempt. Whichever attempt's TASK_DONE
 * lands first counts.
 *
 * Why no fence is needed between the two: both attempts cut the same shard's pushes into the same
 * (task, seq) frames, and a node applies each (task, seq) once, whichever attempt brings it first
 * (server/node/dedupe.ts); both pull the same values under BSP. So the task's pushes are applied
 * exactly once, some frames from one attempt and some from the other, and the loser's late frames
 * are acknowledged as duplicates. A worker misbehaving with either lease (overdue, a TASK_DONE
 * without its pushes, evicted) loses the whole task instead: both attempts are fenced and the
 * task runs again (Scheduler.giveUp).
 *
 * This file keeps the backup leases (one per task at most) and their expiry; the scheduler
 * decides when to grant one and what a TASK_DONE means.
 */
import type { Clock, TimerId } from '../../shared/clock-source.ts';
import type { Task } from './tasks.ts';

/** The second lease of a task: a later attempt, held by another worker. */
export interface BackupLease {
  attempt: number;
  worker: number;
  session: object;
  grantedAt: number;
  timer: TimerId | null;
}

export interface BackupDeps {
  clock: Clock;
  leaseMs: number;
  log(ev: Record<string, unknown>): void;
}

export class Backups {
  /** Backup leases granted so far, and how many of them finished their task first. */
  granted = 0;
  won = 0;
  private readonly byTask = new Map<Task, BackupLease>();
  /** The one timer that wakes the scheduler when the next task becomes eligible. */
  private wake: TimerId | null = null;
  private wakeAt = 0;

  constructor(private readonly d: BackupDeps) {}

  /** The backup lease of `t`, if it has one. */
  of(t: Task): BackupLease | undefined {
    return this.byTask.get(t);
  }

  /** Every backup lease out, with its task. */
  entries(): IterableIterator<[Task, BackupLease]> {
    return this.byTask.entries();
  }

  /** Ends the backup leases `which` selects (evicted worker, closed session). */
  dropWhere(which: (b: BackupLease) => boolean, reason: string): void {
    for (const [t, b] of [...this.byTask]) if (which(b)) this.drop(t, reason);
  }

  /** Leases `t` a second time, to `worker`, as attempt `t.attempt + 1`; returns that attempt. */
  grant(t: Task, worker: number, session: object, expire: (t: Task) => void): number {
    const b: BackupLease = { attempt: t.attempt + 1, worker, session, grantedAt: this.d.clock.now(), timer: null };
    this.byTask.set(t, b);
    this.granted++;
    this.arm(t, b, expire);
    this.d.log({ ev: 'backup', task: t.task, attempt: b.attempt, worker, primary: t.holder });
    return b.attempt;
  }

  /** A heartbeat of the backup lease: it now expires `leaseMs` from now. */
  renew(t: Task, expire: (t: Task) => void): void {
    const b = this.byTask.get(t);
    if (!b) return;
    this.d.clock.clearTimeout(b.timer);
    this.arm(t, b, expire);
  }

  /** Ends `t`'s backup lease (its task finished, or the backup was lost); returns it. */
  drop(t: Task, reason: string): BackupLease | undefined {
    const b = this.byTask.get(t);
    if (!b) return undefined;
    this.d.clock.clearTimeout(b.timer);
    this.byTask.delete(t);
    if (reason === 'won') this.won++;
    this.d.log({ ev: 'backup-end', reason, task: t.task, attempt: b.attempt, worker: b.worker });
    return b;
  }

  /** Backup leases `worker` holds. */
  heldBy(worker: number): number {
    let n = 0;
    for (const b of this.byTask.values()) if (b.worker === worker) n++;
    return n;
  }

  /**
   * Of `leased`, the task `worker` should back up now: it runs past `afterMs`, has no backup, is
   * not the worker's own, and `skip` does not refuse it; the longest-running first. When none is
   * due yet, `dueIn` says in how many ms the first one will be (null: none will).
   */
  pick(
    leased: Iterable<Task>,
    worker: number,
    afterMs: number,
    skip: (t: Task) => boolean,
  ): { task: Task | null; dueIn: number | null } {
    const now = this.d.clock.now();
    let best: Task | null = null;
    let dueIn: number | null = null;
    for (const t of leased) {
      if (t.holder === worker || this.byTask.has(t) || skip(t)) continue;
      const ran = now - t.grantedAt;
      if (ran >= afterMs) {
        if (best === null || t.grantedAt < best.grantedAt) best = t;
      } else if (dueIn === null || afterMs - ran < dueIn) dueIn = afterMs - ran;
    }
    return { task: best, dueIn: best ? null : dueIn };
  }

  /** Calls `fn` once, `ms` from now (a wake-up set for later is moved to then; one sooner stays). */
  wakeIn(ms: number, fn: () => void): void {
    const at = this.d.clock.now() + ms;
    if (this.wake !== null && this.wakeAt <= at) return;
    this.d.clock.clearTimeout(this.wake);
    this.wakeAt = at;
    this.wake = this.d.clock.setTimeout(() => {
      this.wake = null;
      fn();
    }, ms);
  }

  /** Cancels every timer (the job stopped). */
  clearTimers(): void {
    for (const b of this.byTask.values()) {
      this.d.clock.clearTimeout(b.timer);
      b.timer = null;
    }
    this.d.clock.clearTimeout(this.wake);
    this.wake = null;
  }

  private arm(t: Task, b: BackupLease, expire: (t: Task) => void): void {
    b.timer = this.d.clock.setTimeout(() => {
      if (this.byTask.get(t) !== b) return;
      b.timer = null;
      expire(t);
    }, this.d.leaseMs);
  }
}
