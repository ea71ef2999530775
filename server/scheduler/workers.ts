/**
 * Per-worker records of one job (docs/architecture.md §8, the paper's Figure 10): who is connected,
 * what each worker finished, its throughput over a recent window, and its compute time against
 * the time it spent waiting for work. Records outlive sessions, so a reconnecting worker keeps
 * its history and the console still shows workers that left.
 */
import { randomBytes } from 'node:crypto';
import type { WorkerStatus } from './types.ts';

/** Throughput window. */
export const RATE_WINDOW_MS = 30_000;

/**
 * Records kept at most: past it, admitting a new worker forgets the disconnected one seen least
 * recently, preferring those that never finished a task (a flood of sessions cannot grow the book).
 */
export const MAX_WORKER_RECORDS = 1024;

interface WorkerRecord {
  worker: number;
  /** The secret a reconnecting session shows to keep this id (Welcome's `resume`). */
  secret: string;
  agent: string;
  transport: string;
  /** Live sessions with this worker id. */
  sessions: number;
  since: number;
  tasksDone: number;
  tasksRefused: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  lastHeartbeat: number | null;
  lastSeen: number;
  /** (time, examples) of recent TASK_DONEs, oldest first. */
  recent: Array<[number, number]>;
}

export class WorkerBook {
  private readonly records = new Map<number, WorkerRecord>();
  private nextId = 1;

  /**
   * Admits a session and returns its worker id and that id's resume secret. Ids are the
   * scheduler's: `wanted` is kept only with its record's secret (`resume`, from an earlier
   * Welcome) and while no live session holds it (a worker reconnecting); otherwise a fresh id.
   */
  admit(
    now: number,
    wanted: number | undefined,
    resume: string | undefined,
    agent: string,
    transport: string,
  ): { worker: number; resume: string } {
    const claimed = wanted === undefined ? undefined : this.records.get(wanted);
    let id: number;
    if (claimed !== undefined && claimed.sessions === 0 && resume !== undefined && claimed.secret === resume)
      id = claimed.worker;
    else {
      while (this.records.has(this.nextId)) this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      id = this.nextId;
    }
    let r = this.records.get(id);
    if (!r) {
      this.makeRoom();
      r = {
        worker: id,
        secret: randomBytes(16).toString('base64url'),
        agent,
        transport,
        sessions: 0,
        since: now,
        tasksDone: 0,
        tasksRefused: 0,
        examples: 0,
        computeMs: 0,
        waitMs: 0,
        lastHeartbeat: null,
        lastSeen: now,
        recent: [],
      };
      this.records.set(id, r);
    }
    r.agent = agent || r.agent;
    r.transport = transport || r.transport;
    r.sessions++;
    r.lastSeen = now;
    return { worker: r.worker, resume: r.secret };
  }

  /** Forgets disconnected records while the book is full (see MAX_WORKER_RECORDS). */
  private makeRoom(): void {
    while (this.records.size >= MAX_WORKER_RECORDS) {
      let drop: WorkerRecord | null = null;
      for (const r of this.records.values()) {
        if (r.sessions > 0) continue;
        const better =
          drop === null ||
          (r.tasksDone === 0 && drop.tasksDone > 0) ||
          ((r.tasksDone === 0) === (drop.tasksDone === 0) && r.lastSeen < drop.lastSeen);
        if (better) drop = r;
      }
      if (drop === null) return; // every record has a live session: the session cap bounds them
      this.records.delete(drop.worker);
    }
  }

  /** A session of `worker` ended. */
  left(worker: number): void {
    const r = this.records.get(worker);
    if (r && r.sessions > 0) r.sessions--;
  }

  heartbeat(worker: number, now: number): void {
    const r = this.records.get(worker);
    if (r) r.lastHeartbeat = r.lastSeen = now;
  }

  /** `worker` asked for a task. */
  seen(worker: number, now: number): void {
    const r = this.records.get(worker);
    if (r) r.lastSeen = now;
  }

  /** Time a LEASE of `worker` was held by the scheduler. */
  waited(worker: number, ms: number): void {
    const r = this.records.get(worker);
    if (r) r.waitMs += ms;
  }

  /** A TASK_DONE of `worker` was accepted. */
  taskDone(worker: number, now: number, rep: { examples: number; computeMs: number; waitMs: number }): void {
    const r = this.records.get(worker);
    if (!r) return;
    r.tasksDone++;
    r.lastSeen = now;
    r.examples += rep.examples;
    r.computeMs += rep.computeMs;
    r.waitMs += rep.waitMs;
    r.recent.push([now, rep.examples]);
    this.prune(r, now);
  }

  /** A TASK_DONE of `worker` was refused: its receipts did not cover the task's pushes. */
  unapplied(worker: number): void {
    const r = this.records.get(worker);
    if (r) r.tasksRefused++;
  }

  private prune(r: WorkerRecord, now: number): void {
    let i = 0;
    while (i < r.recent.length && r.recent[i][0] <= now - RATE_WINDOW_MS) i++;
    if (i > 0) r.recent.splice(0, i);
  }

  /** Status of every worker ever admitted; `leases` counts the leases each holds now. */
  status(now: number, leases: Map<number, number>): WorkerStatus[] {
    const out: WorkerStatus[] = [];
    for (const r of this.records.values()) {
      this.prune(r, now);
      const span = Math.min(RATE_WINDOW_MS, now - r.since);
      let sum = 0;
      for (const [, n] of r.recent) sum += n;
      out.push({
        worker: r.worker,
        agent: r.agent,
        transport: r.transport,
        connected: r.sessions > 0,
        leases: leases.get(r.worker) ?? 0,
        tasksDone: r.tasksDone,
        tasksRefused: r.tasksRefused,
        examples: r.examples,
        examplesPerSec: span > 0 ? (sum * 1000) / span : 0,
        computeMs: r.computeMs,
        waitMs: r.waitMs,
        lastHeartbeat: r.lastHeartbeat,
        lastSeen: r.lastSeen,
      });
    }
    return out;
  }
}
