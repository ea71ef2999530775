/**
 * The task table of one job: every (iteration, shard) task with its state and lease, and the
 * order in which runnable tasks are handed out — returned tasks first (lowest task id first),
 * then fresh tasks in iteration order, then shard order.
 */
import type { TimerId } from '../../shared/clock-source.ts';
import { taskId } from '../../shared/protocol/sched.ts';
import type { TaskRecord, TaskState } from './types.ts';

export interface Task {
  readonly task: number;
  readonly shard: number;
  readonly iteration: number;
  state: TaskState;
  attempt: number;
  attempts: number;
  doneAttempt: number | null;
  doneBy: number | null;
  /** Worker id and session of the current lease (state 'leased'). */
  holder: number | null;
  session: object | null;
  /** Expiry timer of the current lease, or the retry timer of a failed fence. */
  timer: TimerId | null;
  /** Clock time the current lease was granted or last renewed by a heartbeat. */
  renewedAt: number;
  /** Clock time the current lease was granted. */
  grantedAt: number;
  /**
   * Workers that lost this task by misbehaving (held it past its expected time, or reported it
   * done without its pushes applied): it goes to another live worker when there is one.
   */
  avoid?: Set<number>;
}

export class TaskQueue {
  private readonly list: Task[] = [];
  /** Returned tasks waiting to run again, sorted by task id. */
  private readonly returned: Task[] = [];
  /** Lowest index of `list` not yet handed out; every index below it has been. */
  private fresh = 0;
  /** Fresh tasks handed out ahead of `fresh` (by affinity), by index. */
  private readonly takenAhead = new Set<number>();
  /** Highest task id handed out so far. */
  private maxStarted = 0;
  private readonly counts: Record<TaskState, number> = { pending: 0, leased: 0, fencing: 0, done: 0 };
  /** Tasks in state 'leased'. */
  readonly leased = new Set<Task>();

  constructor(
    private readonly shards: number,
    iterations: number,
  ) {
    for (let iteration = 0; iteration < iterations; iteration++)
      for (let shard = 0; shard < shards; shard++)
        this.list.push({
          task: taskId(iteration, shard, shards),
          shard,
          iteration,
          state: 'pending',
          attempt: 0,
          attempts: 0,
          doneAttempt: null,
          doneBy: null,
          holder: null,
          session: null,
          timer: null,
          renewedAt: 0,
          grantedAt: 0,
        });
    this.counts.pending = this.list.length;
  }

  get size(): number {
    return this.list.length;
  }

  /** The highest task id handed out so far (every task up to the first fresh one was). */
  get started(): number {
    return this.maxStarted;
  }

  /** The task with this id, or undefined when the id is not one of this job's. */
  get(task: number): Task | undefined {
    return Number.isInteger(task) && task >= 1 ? this.list[task - 1] : undefined;
  }

  /** Whether a returned task avoids some worker (`Task.avoid`): then `take` may skip it for one. */
  get avoiding(): boolean {
    return this.returned.some((t) => t.avoid !== undefined && t.avoid.size > 0);
  }

  /**
   * Removes and returns the first queued task whose iteration `open` admits (and, of the returned
   * ones, that `skip` does not refuse), or null. With
   * `prefer`, a task of that shard goes first: a returned one, or the fresh one in the same
   * iteration as the next fresh task (affinity never runs ahead of the iteration order).
   */
  take(open: (iteration: number) => boolean, prefer?: number, skip?: (t: Task) => boolean): Task | null {
    let first = -1;
    for (let i = 0; i < this.returned.length; i++) {
      if (!open(this.returned[i].iteration) || skip?.(this.returned[i])) continue;
      if (first < 0) first = i;
      if (prefer === undefined || this.returned[i].shard === prefer) return this.returned.splice(i, 1)[0];
    }
    if (first >= 0) return this.returned.splice(first, 1)[0];
    // Fresh tasks are in iteration order, so if the first is gated, all are.
    if (this.fresh >= this.list.length || !open(this.list[this.fresh].iteration)) return null;
    if (prefer !== undefined && prefer < this.shards) {
      const at = this.list[this.fresh].iteration * this.shards + prefer;
      if (at > this.fresh && !this.takenAhead.has(at)) {
        this.takenAhead.add(at);
        return this.started_(this.list[at]);
      }
    }
    return this.started_(this.list[this.advance()]);
  }

  /** Takes the fresh task at `fresh` and moves `fresh` past every task already taken ahead. */
  private advance(): number {
    const at = this.fresh++;
    while (this.takenAhead.delete(this.fresh)) this.fresh++;
    return at;
  }

  private started_(t: Task): Task {
    if (t.task > this.maxStarted) this.maxStarted = t.task;
    return t;
  }

  /**
   * Takes `t` out of the fresh order without handing it out (resuming from a checkpoint: the
   * task is done, or must be fenced before it runs again).
   */
  claim(t: Task): void {
    const at = t.task - 1;
    if (at < this.fresh || this.takenAhead.has(at)) return;
    if (at === this.fresh) this.advance();
    else this.takenAhead.add(at);
    this.started_(t);
  }

  /** Puts a task that lost its lease back in the queue (ahead of fresh tasks). */
  requeue(t: Task): void {
    let i = this.returned.length;
    while (i > 0 && this.returned[i - 1].task > t.task) i--;
    this.returned.splice(i, 0, t);
  }

  setState(t: Task, s: TaskState): void {
    this.counts[t.state]--;
    this.counts[s]++;
    t.state = s;
    if (s === 'leased') this.leased.add(t);
    else this.leased.delete(t);
  }

  stateCounts(): Record<TaskState, number> & { total: number } {
    return { ...this.counts, total: this.list.length };
  }

  /** Tasks with a lease or a pending fence (their timers need clearing on stop). */
  *withTimers(): Iterable<Task> {
    for (const t of this.list) if (t.timer !== null) yield t;
  }

  records(): TaskRecord[] {
    return this.list.map((t) => ({
      task: t.task,
      shard: t.shard,
      iteration: t.iteration,
      state: t.state,
      attempt: t.attempt,
      attempts: t.attempts,
      doneAttempt: t.doneAttempt,
      doneBy: t.doneBy,
      holder: t.holder,
    }));
  }
}
