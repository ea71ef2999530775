/**
 * What a worker that misbehaved with a lease is kept from (PROTOCOL.md §6.1): a task it lost
 * by holding it overdue or by a TASK_DONE refused goes to another live worker (`avoids`), and a
 * worker that held a lease overdue is benched for `benchMs` while a worker not benched has a
 * session (`sitsOut`): a hoarder cannot stall iteration after iteration.
 */
import type { Clock } from '../../shared/clock-source.ts';
import type { Task } from './tasks.ts';

export class Discipline {
  /** Workers benched after an overdue lease, until this clock time. */
  private readonly benched = new Map<number, number>();

  constructor(
    private readonly clock: Clock,
    private readonly benchMs: number,
    /** The worker ids of the sessions open now. */
    private readonly live: () => Iterable<number | null>,
  ) {}

  /** `worker` lost `t` by misbehaving: `t` avoids it from now on, and an overdue holder is benched. */
  misbehaved(t: Task, reason: 'overdue' | 'unapplied', worker: number): void {
    t.avoid ??= new Set();
    t.avoid.add(worker);
    if (reason === 'overdue') this.benched.set(worker, this.clock.now() + this.benchMs);
  }

  /** Whether `worker` is benched and some live worker is not: its LEASEs wait. */
  sitsOut(worker: number): boolean {
    const until = this.benched.get(worker);
    if (until === undefined) return false;
    const now = this.clock.now();
    if (until <= now) {
      this.benched.delete(worker);
      return false;
    }
    for (const other of this.live())
      if (other !== null && other !== worker && (this.benched.get(other) ?? 0) <= now) return true;
    return false;
  }

  /** Whether `worker` must leave `t` to another live worker (it lost `t` by misbehaving). */
  avoids(t: Task, worker: number): boolean {
    const avoid = t.avoid;
    if (avoid === undefined || !avoid.has(worker)) return false;
    for (const other of this.live()) if (other !== null && !avoid.has(other)) return true;
    return false;
  }
}
