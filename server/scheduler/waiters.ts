/**
 * LEASE requests the scheduler is holding because no task may run yet, in arrival order. Each
 * is answered when a task becomes runnable, when the job ends, or after `holdMs` (the worker
 * then asks again); the time each was held is counted as its worker's wait time.
 */
import type { Clock, TimerId } from '../../shared/clock-source.ts';
import type { Session } from './dispatch.ts';

export interface Waiter {
  session: Session;
  requestId: number;
  since: number;
  timer: TimerId;
}

export class Waiters {
  private list: Waiter[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly holdMs: number,
    private readonly onWaited: (s: Session, ms: number) => void,
  ) {}

  get size(): number {
    return this.list.length;
  }

  /** Holds a LEASE; `onTimeout` answers it if nothing did within `holdMs`. */
  add(session: Session, requestId: number, onTimeout: (w: Waiter) => void): void {
    const w: Waiter = { session, requestId, since: this.clock.now(), timer: null };
    w.timer = this.clock.setTimeout(() => {
      this.list = this.list.filter((x) => x !== w);
      this.release(w);
      onTimeout(w);
    }, this.holdMs);
    this.list.push(w);
  }

  /** LEASEs of `session` held now. */
  countSession(session: Session): number {
    let n = 0;
    for (const w of this.list) if (w.session === session) n++;
    return n;
  }

  /** The oldest held LEASE, left in place. */
  peek(): Waiter | undefined {
    return this.list[0];
  }

  /** The held LEASEs, oldest first (a copy: `remove` may be called while going through it). */
  all(): readonly Waiter[] {
    return [...this.list];
  }

  /** Removes one held LEASE (its hold time is counted). */
  remove(w: Waiter): void {
    const i = this.list.indexOf(w);
    if (i < 0) return;
    this.list.splice(i, 1);
    this.release(w);
  }

  /** The oldest held LEASE, removed (its hold time is counted). */
  shift(): Waiter | undefined {
    const w = this.list.shift();
    if (w) this.release(w);
    return w;
  }

  /** Every held LEASE, removed. */
  takeAll(): Waiter[] {
    const all = this.list;
    this.list = [];
    for (const w of all) this.release(w);
    return all;
  }

  /** Forgets the LEASEs of a closed session. */
  dropSession(s: Session): void {
    const mine = this.list.filter((w) => w.session === s);
    if (mine.length === 0) return;
    this.list = this.list.filter((w) => w.session !== s);
    for (const w of mine) this.release(w);
  }

  private release(w: Waiter): void {
    this.clock.clearTimeout(w.timer);
    this.onWaited(w.session, this.clock.now() - w.since);
  }
}
