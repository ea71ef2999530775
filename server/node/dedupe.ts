/**
 * At-most-once application of pushes (docs/architecture.md §6). Every push carries (worker, task,
 * attempt, seq), seq being the push's index within its task. A server applies a given
 * (task, seq) once, whichever attempt delivers it first; later copies are acknowledged as
 * duplicates. Pushes from attempts below a task's fence (a dead lease) are refused.
 *
 * Task 0 means "no scheduler task" (ad-hoc pushes of a Node worker): then (worker, seq) is the
 * identity, remembered in a sliding window of WINDOW seqs per worker, so memory stays bounded.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { TaskStamp } from '../../shared/protocol/frame.ts';

export const WINDOW = 4096;

interface TaskState {
  fence: number;
  seqs: Set<number>;
}

interface WorkerWindow {
  /** Highest seq seen; bits[s % WINDOW] is set for applied seqs in (max - WINDOW, max]. */
  max: number;
  bits: Uint8Array;
}

export class PushDedupe {
  private readonly tasks = new Map<number, TaskState>();
  private readonly workers = new Map<number, WorkerWindow>();

  /** True when this push was applied before; throws when it must be refused. */
  seen(s: TaskStamp): boolean {
    if (s.task !== 0) {
      const t = this.tasks.get(s.task);
      if (t && s.attempt < t.fence)
        throw new TabshardError('TS_ERR_LEASE_EXPIRED', `task ${s.task} attempt ${s.attempt} < ${t.fence}`);
      return t?.seqs.has(s.seq) ?? false;
    }
    const w = this.workers.get(s.worker);
    if (!w || s.seq > w.max) return false;
    if (s.seq <= w.max - WINDOW) throw new TabshardError('TS_ERR_PUSH_TOO_OLD', `seq ${s.seq} of worker ${s.worker}`);
    return w.bits[s.seq % WINDOW] === 1;
  }

  /** Records an applied push (call after `seen` returned false and the update succeeded). */
  record(s: TaskStamp): void {
    if (s.task !== 0) {
      this.task(s.task).seqs.add(s.seq);
      return;
    }
    let w = this.workers.get(s.worker);
    if (!w) {
      w = { max: -1, bits: new Uint8Array(WINDOW) };
      this.workers.set(s.worker, w);
    }
    if (s.seq > w.max) {
      // Clear the slots the window slides past.
      for (let q = Math.max(w.max + 1, s.seq - WINDOW + 1); q <= s.seq; q++) w.bits[q % WINDOW] = 0;
      w.max = s.seq;
    }
    w.bits[s.seq % WINDOW] = 1;
  }

  /** From now on, pushes of `task` from attempts below `attempt` are refused. */
  fence(task: number, attempt: number): void {
    const t = this.task(task);
    t.fence = Math.max(t.fence, attempt);
  }

  private task(task: number): TaskState {
    let t = this.tasks.get(task);
    if (!t) {
      t = { fence: 0, seqs: new Set() };
      this.tasks.set(task, t);
    }
    return t;
  }

  /** Tasks remembered (for stats). */
  get taskCount(): number {
    return this.tasks.size;
  }
}
