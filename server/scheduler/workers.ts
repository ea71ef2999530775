/**
 * Per-worker records of one job (docs/architecture.md §8, the paper's Figure 10): who is connected,
 * what each worker finished, its throughput over a recent window, and its compute time against
 * the time it spent waiting for work. Records outlive sessions, so a reconnecting worker keeps
 * its history and the console still shows workers that left.
 */
import type { WorkerStatus } from './types.ts';

/** Throughput window. */
export const RATE_WINDOW_MS = 30_000;

interface WorkerRecord {
  worker: number;
  agent: string;
  transport: string;
  /** Live sessions with this worker id. */
  sessions: number;
  since: number;
  tasksDone: number;
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
   * Admits a session: keeps `wanted` when it is given and no live session holds it (a worker
   * reconnecting), else assigns a fresh id. Returns the id.
   */
  admit(now: number, wanted: number | undefined, agent: string, transport: string): number {
    let id = wanted;
    if (id === undefined || (this.records.get(id)?.sessions ?? 0) > 0) {
      while (this.records.has(this.nextId)) this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      id = this.nextId;
    }
    let r = this.records.get(id);
    if (!r) {
      r = {
        worker: id,
        agent,
        transport,
        sessions: 0,
        since: now,
        tasksDone: 0,
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
    return id;
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
