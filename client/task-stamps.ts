/**
 * The worker's push identities (PROTOCOL.md §7): the (task, attempt, seq) stamp of every push
 * frame, and the receipts the nodes sealed on them (§6.3) kept for the task's TASK_DONE. A node
 * applies each (worker, task, seq) at most once, so stamps decide what a resend or a re-run is.
 */
import { TabshardError } from '../shared/errors.ts';
import type { TaskStamp } from '../shared/protocol/frame.ts';
import { MAX_RECEIPTS, receiptToString } from '../shared/protocol/receipt.ts';
import type { TaskRef } from './kv-table.ts';

/** How many tasks' seq counters (and receipt lists) are kept; the oldest is forgotten. */
const TASK_SEQS_KEPT = 64;

/** Frames one attempt of a task may push: the low 24 bits of its seqs (the ring version has the top 8). */
const TASK_SEQ_COUNTER = 1 << 24;

export class TaskStamps {
  /** The task `setTask` names: pushes without an explicit task are stamped with it. */
  current: TaskRef = { task: 0, attempt: 0 };
  /** Seq of ad-hoc (task 0) pushes: never restarts, or a node would take new pushes for resends. */
  private adhocSeq = 0;
  /** Next seq per task (and the attempt it counts for), in insertion order. */
  private readonly seqs = new Map<number, { attempt: number; seq: number }>();
  /** Receipts of recent tasks' pushes, by task (the newest TASK_SEQS_KEPT tasks). */
  private readonly receipts = new Map<number, { attempt: number; list: string[] }>();

  constructor(private readonly worker: number) {}

  /** Stamps later pushes that name no task with this one; its seq counter starts again at 0. */
  setTask(task: number, attempt: number): void {
    this.current = { task, attempt };
    if (task !== 0) this.seqs.set(task, { attempt, seq: 0 });
  }

  /**
   * Stamps for the `n` frames of one push of `task`, sliced under ring `ringVersion`. A task's seq
   * is `(ring version mod 256) << 24 | counter`, the counter starting at 0 for each attempt, so a
   * re-run under the same ring repeats the first run's seqs (its copies are recognised) and a
   * re-run under another ring, whose frames hold other keys, never reuses one. Ad-hoc pushes
   * (task 0) count on from one seq counter. With `take` false the stamps are only looked at.
   */
  stamps(n: number, task: TaskRef, take: boolean, ringVersion: number): TaskStamp[] {
    const out: TaskStamp[] = [];
    if (task.task === 0) {
      for (let i = 0; i < n; i++)
        out.push({ worker: task.worker ?? this.worker, task: 0, attempt: 0, seq: this.adhocSeq + i });
      if (take) this.adhocSeq += n;
      return out;
    }
    let c = this.seqs.get(task.task);
    if (c === undefined || c.attempt !== task.attempt) c = { attempt: task.attempt, seq: 0 };
    if (c.seq + n > TASK_SEQ_COUNTER)
      throw new TabshardError(
        'TS_ERR_INVALID_ARGUMENT',
        `task ${task.task} pushed more than 2^24 frames in one attempt`,
      );
    const high = (ringVersion & 0xff) << 24;
    const worker = task.worker ?? this.worker;
    for (let i = 0; i < n; i++)
      out.push({ worker, task: task.task, attempt: task.attempt, seq: (high | (c.seq + i)) >>> 0 });
    if (take) {
      this.seqs.delete(task.task);
      this.seqs.set(task.task, { attempt: task.attempt, seq: c.seq + n });
      while (this.seqs.size > TASK_SEQS_KEPT) {
        const oldest = this.seqs.keys().next().value as number;
        if (oldest === this.current.task) break;
        this.seqs.delete(oldest);
      }
    }
    return out;
  }

  /** Keeps a task push's receipt for the task's TASK_DONE. */
  receipt(stamp: TaskStamp, body: Uint8Array): void {
    let r = this.receipts.get(stamp.task);
    if (r === undefined || r.attempt !== stamp.attempt) {
      r = { attempt: stamp.attempt, list: [] };
      this.receipts.delete(stamp.task);
      this.receipts.set(stamp.task, r);
      while (this.receipts.size > TASK_SEQS_KEPT) this.receipts.delete(this.receipts.keys().next().value as number);
    }
    if (r.list.length < MAX_RECEIPTS) r.list.push(receiptToString(body));
  }

  /** The receipts of `task` at `attempt`, forgotten once taken; empty from nodes that issue none. */
  takeReceipts(task: number, attempt: number): string[] {
    const r = this.receipts.get(task);
    this.receipts.delete(task);
    return r !== undefined && r.attempt === attempt ? r.list : [];
  }
}
