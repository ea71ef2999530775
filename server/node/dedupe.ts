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

/** A PushDedupe's state as JSON: [task, fence, applied seqs] and [worker, applied seqs in its window]. */
export interface DedupeRecords {
  tasks: Array<[number, number, number[]]>;
  workers: Array<[number, number[]]>;
}

/** Checks untrusted JSON (a MIGRATE body, a checkpoint) is a DedupeRecords; TS_ERR_FRAME_MALFORMED otherwise. */
export function parseDedupeRecords(v: unknown): DedupeRecords {
  const bad = (): never => {
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'at-most-once records');
  };
  const u32 = (x: unknown): number =>
    Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff ? (x as number) : bad();
  const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : bad());
  if (typeof v !== 'object' || v === null) bad();
  const o = v as Record<string, unknown>;
  return {
    tasks: list(o.tasks).map((e) => {
      const [task, fence, seqs] = list(e);
      return [u32(task), u32(fence), list(seqs).map(u32)] as [number, number, number[]];
    }),
    workers: list(o.workers).map((e) => {
      const [worker, seqs] = list(e);
      return [u32(worker), list(seqs).map(u32)] as [number, number[]];
    }),
  };
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
    if (s.seq <= w.max - WINDOW) return; // older than the window (a late replicated copy): nothing to mark
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

  /** Forgets that `seqs` of `task` were applied (held pushes dropped before they were: §6 TABLE `hold`). */
  forget(task: number, seqs: readonly number[]): void {
    const t = this.tasks.get(task);
    if (t) for (const s of seqs) t.seqs.delete(s);
  }

  private task(task: number): TaskState {
    let t = this.tasks.get(task);
    if (!t) {
      t = { fence: 0, seqs: new Set() };
      this.tasks.set(task, t);
    }
    return t;
  }

  /**
   * The whole record as plain JSON (a checkpoint stores it): fences, applied (task, seq)s, and
   * each ad-hoc worker's window. With `applied: false`, fences only: what a copy of a key range
   * to another node carries — an applied (task, seq) speaks only for the keys of that frame its
   * holder received, so it must never travel without them (a FORWARD carries its own stamp).
   */
  export(opts: { applied?: boolean } = {}): DedupeRecords {
    const applied = opts.applied !== false;
    const tasks: DedupeRecords['tasks'] = [];
    for (const [task, t] of this.tasks) tasks.push([task, t.fence, applied ? [...t.seqs] : []]);
    const workers: DedupeRecords['workers'] = [];
    if (applied)
      for (const [worker, w] of this.workers) {
        const seqs: number[] = [];
        for (let q = Math.max(0, w.max - WINDOW + 1); q <= w.max; q++) if (w.bits[q % WINDOW] === 1) seqs.push(q);
        workers.push([worker, seqs]);
      }
    return { tasks, workers };
  }

  /** Adds another record to this one (fences only rise; applied sets are united). */
  merge(r: DedupeRecords): void {
    for (const [task, fence, seqs] of r.tasks) {
      const t = this.task(task);
      t.fence = Math.max(t.fence, fence);
      for (const q of seqs) t.seqs.add(q);
    }
    for (const [worker, seqs] of r.workers) for (const seq of seqs) this.record({ worker, task: 0, attempt: 0, seq });
  }

  /** Tasks remembered (for stats). */
  get taskCount(): number {
    return this.tasks.size;
  }
}
