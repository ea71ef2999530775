/**
 * The worker's side of a scheduler session (docs/workers.md): HELLO, then LEASE for tasks,
 * heartbeats while a lease is held, TASK_DONE with what the task cost. Runs over any Conn (the
 * gateway's WebSocket in a browser, the memory network in tests); time comes from an injected
 * Clock so tests drive heartbeats with a fake one.
 */
import { type Clock, realClock, sleep, type TimerId } from '../shared/clock-source.ts';
import { TabshardError, toTabshardError } from '../shared/errors.ts';
import { MsgType } from '../shared/protocol/frame.ts';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTaskDone,
  parseTask,
  parseWelcome,
  type SchedHello,
  type TaskGrant,
} from '../shared/protocol/sched.ts';
import { RpcPeer } from '../shared/rpc.ts';
import type { Conn } from '../shared/transport/types.ts';

/** A task under lease: run shard `shard` for iteration `iteration`, push under (task, attempt). */
export type Lease = TaskGrant;

export interface SessionConfig {
  job: number;
  shards: number;
  iterations: number;
  leaseMs: number;
  heartbeatMs: number;
  app: string;
}

export interface TaskDoneReport {
  examples: number;
  computeMs: number;
  waitMs: number;
  loss?: number;
  /** The receipts of the task's pushes (Worker.takeReceipts). */
  receipts?: string[];
}

/** How long a LEASE refused at the lease cap waits before it is sent again. */
const LEASE_LIMIT_RETRY_MS = 50;

export interface SessionOptions {
  clock?: Clock;
  /** Per-request timeout (RpcPeer, real time); must exceed the scheduler's LEASE hold. 0 = none. Default 30 s. */
  timeoutMs?: number;
}

export class SchedulerSession {
  /** Called when a heartbeat is refused (lease expired, job stopped, connection lost): stop that task. */
  onrevoked: ((lease: Lease, err: TabshardError) => void) | null = null;

  /** Shown with `worker` in a later session's HELLO to keep this worker id (Welcome's `resume`). */
  resume: string | undefined;
  /** The job's read capability (PROTOCOL.md §6.2), when the cluster issues capabilities. */
  read: string | undefined;
  /** Leases this worker may hold and await at once (the runner asks no further ahead). */
  maxLeases: number | undefined;
  private readonly beats = new Map<number, { lease: Lease; timer: TimerId }>();
  private closedLocally = false;

  private constructor(
    private readonly peer: RpcPeer,
    private readonly clock: Clock,
    readonly worker: number,
    readonly config: SessionConfig,
  ) {}

  /** Says HELLO on `conn` and resolves with the open session (the worker id the scheduler gave). */
  static async open(conn: Conn, hello: SchedHello = {}, opts: SessionOptions = {}): Promise<SchedulerSession> {
    const peer = new RpcPeer(conn, opts.timeoutMs ?? 30_000);
    try {
      const w = parseWelcome(await peer.call((id) => encodeSchedHello(id, hello)));
      const { job, shards, iterations, leaseMs, heartbeatMs, app } = w;
      const s = new SchedulerSession(peer, opts.clock ?? realClock, w.worker, {
        job,
        shards,
        iterations,
        leaseMs,
        heartbeatMs,
        app,
      });
      s.resume = w.resume;
      s.read = w.read;
      s.maxLeases = w.maxLeases;
      return s;
    } catch (err) {
      peer.close();
      throw err;
    }
  }

  /** The next task (heartbeats start at once), or null when the job is done or stopped. */
  async next(): Promise<Lease | null> {
    for (;;) {
      let r: ReturnType<typeof parseTask>;
      try {
        r = parseTask(await this.peer.call((id) => encodeLease(id, this.config.job)));
      } catch (err) {
        // At the scheduler's lease cap (a TASK_DONE of ours not counted yet): ask again shortly.
        if (!(err instanceof TabshardError) || err.code !== 'TS_ERR_LEASE_LIMIT') throw err;
        await sleep(this.clock, LEASE_LIMIT_RETRY_MS);
        continue;
      }
      if ('done' in r) return null;
      if ('wait' in r) {
        if (r.wait > 0) await sleep(this.clock, r.wait);
        continue;
      }
      this.startBeats(r);
      return r;
    }
  }

  /** Reports a lease finished (heartbeats stop); rejects with TS_ERR_LEASE_EXPIRED if it was lost. */
  async done(lease: Lease, report: TaskDoneReport): Promise<void> {
    this.stopBeats(lease.task);
    const f = await this.peer.call((id) =>
      encodeTaskDone(id, { task: lease.task, attempt: lease.attempt, ...report }, this.config.job),
    );
    if (f.type !== MsgType.ACK) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'TASK_DONE expects an ACK');
  }

  /** Stops heartbeats and closes the connection (leases return to the scheduler at once). */
  close(): void {
    this.closedLocally = true;
    for (const task of [...this.beats.keys()]) this.stopBeats(task);
    this.peer.close();
  }

  private startBeats(lease: Lease): void {
    this.stopBeats(lease.task);
    const beat = () => {
      const entry = this.beats.get(lease.task);
      if (!entry || entry.lease !== lease) return;
      // Fixed cadence from the clock, not from the replies: a slow reply must not stretch the gaps.
      entry.timer = this.clock.setTimeout(beat, this.config.heartbeatMs);
      this.peer
        .call((id) => encodeHeartbeat(id, lease, this.config.job))
        .then((f) => {
          if (f.type !== MsgType.ACK) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'HEARTBEAT expects an ACK');
        })
        .catch((err: unknown) => {
          if (this.beats.get(lease.task)?.lease !== lease || this.closedLocally) return;
          this.stopBeats(lease.task);
          this.onrevoked?.(lease, toTabshardError(err));
        });
    };
    this.beats.set(lease.task, { lease, timer: this.clock.setTimeout(beat, this.config.heartbeatMs) });
  }

  private stopBeats(task: number): void {
    const b = this.beats.get(task);
    if (!b) return;
    this.clock.clearTimeout(b.timer);
    this.beats.delete(task);
  }
}
