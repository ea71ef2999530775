/**
 * Lease lifecycle of one job's tasks: a lease is granted with an expiry timer, heartbeats push
 * the expiry back (a lease expires exactly `leaseMs` after its last heartbeat), and a lease
 * that is lost — expired, released when its session closed, or evicted — returns its task with
 * attempt + 1 only after every server node is fenced for that attempt, so the dead attempt's
 * pushes are refused. A failed fence is logged and retried with backoff, never dropped.
 */
import type { Clock } from '../../shared/clock-source.ts';
import type { Task, TaskQueue } from './tasks.ts';

const MAX_FENCE_RETRY_MS = 30_000;

/** Durations (grant to TASK_DONE) of this many recent tasks decide when a lease is overdue. */
const RECENT_TASKS = 32;

export interface LeaseDeps {
  clock: Clock;
  queue: TaskQueue;
  leaseMs: number;
  fenceRetryMs: number;
  fence(task: number, attempt: number): Promise<void>;
  log(ev: Record<string, unknown>): void;
  /** True once the job was stopped: fences that finish later change nothing. */
  stopped(): boolean;
  /** A task is back in the queue. */
  requeued(): void;
  /** A lease was lost (its task is being fenced). */
  lost(): void;
  /** A lease is about to be lost: anything else leased on its task ends first (backups.ts). */
  losing?(t: Task): void;
}

export class Leases {
  /** Leases lost and given out again. */
  reassignments = 0;
  /** Grant-to-done times of the last RECENT_TASKS tasks (a ring). */
  private readonly recent: number[] = [];
  private recentAt = 0;

  constructor(private readonly d: LeaseDeps) {}

  /** Leases `t` to `worker` over `session`; returns the attempt. */
  grant(t: Task, worker: number, session: object): number {
    this.d.queue.setState(t, 'leased');
    t.holder = worker;
    t.session = session;
    t.attempts++;
    t.grantedAt = this.d.clock.now();
    this.arm(t);
    this.d.log({ ev: 'lease', task: t.task, attempt: t.attempt, worker });
    return t.attempt;
  }

  /** A heartbeat: the lease now expires `leaseMs` from now. */
  renew(t: Task): void {
    this.d.clock.clearTimeout(t.timer);
    this.arm(t);
  }

  /**
   * Median grant-to-done time of the job's recent tasks (ms), or null before any finished. A
   * lease held far past it is overdue (Scheduler: returned at its next heartbeat).
   */
  medianTaskMs(): number | null {
    if (this.recent.length === 0) return null;
    const sorted = [...this.recent].sort((a, b) => a - b);
    return sorted[sorted.length >> 1];
  }

  /** The lease ended with the task done (by an attempt granted at `grantedAt`: its time is recorded). */
  finish(t: Task, grantedAt = t.grantedAt): void {
    const ms = this.d.clock.now() - grantedAt;
    if (this.recent.length < RECENT_TASKS) this.recent.push(ms);
    else this.recent[this.recentAt] = ms;
    this.recentAt = (this.recentAt + 1) % RECENT_TASKS;
    this.d.clock.clearTimeout(t.timer);
    t.timer = null;
    t.holder = null;
    t.session = null;
    this.d.queue.setState(t, 'done');
  }

  /** The lease is lost: the next attempt may run once every node is fenced for it. */
  lose(t: Task, reason: string): void {
    this.d.losing?.(t);
    this.d.clock.clearTimeout(t.timer);
    const worker = t.holder;
    t.holder = null;
    t.session = null;
    t.attempt++;
    this.reassignments++;
    this.d.queue.setState(t, 'fencing');
    // sinceRenewMs: from the lease's last heartbeat (or grant) to its return, the churn bar's measure.
    const sinceRenewMs = this.d.clock.now() - t.renewedAt;
    this.d.log({ ev: 'return', reason, task: t.task, attempt: t.attempt, worker, sinceRenewMs });
    this.fence(t, t.attempt, this.d.fenceRetryMs);
    this.d.lost();
  }

  /**
   * A task whose earlier attempts may still push somewhere (resuming from a checkpoint: they were
   * leased before the crash) runs again at `attempt`, once every node is fenced for it.
   */
  refence(t: Task, attempt: number): void {
    t.attempt = Math.max(t.attempt, attempt);
    this.d.queue.setState(t, 'fencing');
    this.fence(t, t.attempt, this.d.fenceRetryMs);
  }

  /** Cancels every lease expiry and fence retry (the job stopped). */
  clearTimers(): void {
    for (const t of this.d.queue.withTimers()) {
      this.d.clock.clearTimeout(t.timer);
      t.timer = null;
    }
  }

  private arm(t: Task): void {
    const attempt = t.attempt;
    t.renewedAt = this.d.clock.now();
    t.timer = this.d.clock.setTimeout(() => {
      if (t.state !== 'leased' || t.attempt !== attempt) return;
      t.timer = null;
      this.lose(t, 'expired');
    }, this.d.leaseMs);
  }

  private fence(t: Task, attempt: number, retryMs: number): void {
    t.timer = null;
    Promise.resolve()
      .then(() => this.d.fence(t.task, attempt))
      .then(
        () => {
          if (this.d.stopped() || t.state !== 'fencing' || t.attempt !== attempt) return;
          this.d.log({ ev: 'fenced', task: t.task, attempt });
          this.d.queue.setState(t, 'pending');
          this.d.queue.requeue(t);
          this.d.requeued();
        },
        (err: unknown) => {
          if (this.d.stopped()) return;
          this.d.log({ ev: 'fence-failed', task: t.task, attempt, error: String(err), retryMs });
          t.timer = this.d.clock.setTimeout(
            () => this.fence(t, attempt, Math.min(retryMs * 2, MAX_FENCE_RETRY_MS)),
            retryMs,
          );
        },
      );
  }
}
