/**
 * What the admin console sees, as one stream of messages per viewer (console.ts carries them as
 * server-sent events). Everything is pushed, nothing is polled by the browser:
 *
 * - `hello` once: the cluster layout (ring, addresses, tables) and each job's metric history;
 * - `snapshot` whenever something changed: server-node load and every job's status, built from
 *   state the gateway already holds, sent at most once per `minIntervalMs` (coalesced);
 * - `metric` at once for each held-out evaluation (a delta: the history is not resent);
 * - `cluster` when the ring's version changes.
 *
 * Node load comes from the server manager's STATS, sampled every `sampleMs` while anyone
 * watches (pushes/s is the difference of two samples), with each node's state and key-range
 * counts when the manager gives them (`nodes()`); a node that did not answer stays listed, its
 * last numbers marked as not live. A job's scheduler events mark the snapshot dirty, so a change
 * in the cluster reaches the console within `minIntervalMs`.
 */
import type { ClusterInfo } from '../../shared/cluster.ts';
import type { NodeLoad } from '../../shared/status.ts';
import type { JobListener, JobMetric } from '../jobs/driver.ts';
import type { JobStatus } from '../scheduler/types.ts';
import { type NodeSources, readNodes } from './metrics.ts';

export type { NodeLoad };

/** The part of a JobDriver the console reads. */
export interface ConsoleJob {
  readonly app: { job: number };
  readonly metrics: JobMetric[];
  status(): JobStatus & { reached: boolean; target: { accuracy: number; logLoss?: number }; metrics: JobMetric[] };
  listen(l: JobListener): () => void;
}

export type ConsoleMessage =
  | { type: 'hello'; cluster: ClusterInfo | null; metrics: Record<number, JobMetric[]> }
  | { type: 'snapshot'; t: number; nodes: NodeLoad[]; jobs: ConsoleJobView[] }
  | { type: 'metric'; job: number; metric: JobMetric }
  | { type: 'cluster'; cluster: ClusterInfo };

/** A job's status without its metric history (sent once in `hello`, then as `metric` deltas). */
export type ConsoleJobView = Omit<ReturnType<ConsoleJob['status']>, 'metrics'> & {
  examplesPerSec: number;
  latest: JobMetric | null;
};

export interface ConsoleFeedDeps extends NodeSources {
  cluster(): ClusterInfo;
  jobs(): ConsoleJob[];
  /** Shortest time between two snapshots (default 250 ms). */
  minIntervalMs?: number;
  /** How often node stats are sampled while someone watches (default 1000 ms). */
  sampleMs?: number;
}

type Viewer = (m: ConsoleMessage) => void;

export class ConsoleFeed {
  private readonly viewers = new Set<Viewer>();
  private readonly minIntervalMs: number;
  private readonly sampleMs: number;
  private nodes: NodeLoad[] = [];
  private prev = new Map<string, { t: number; pushes: number }>();
  private ringVersion = -1;
  private lastSent = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private sampleTimer: ReturnType<typeof setInterval> | null = null;
  private unlisten: Array<() => void> = [];
  private readonly listened = new Set<number>();

  constructor(private readonly deps: ConsoleFeedDeps) {
    this.minIntervalMs = deps.minIntervalMs ?? 250;
    this.sampleMs = deps.sampleMs ?? 1000;
  }

  get size(): number {
    return this.viewers.size;
  }

  /** Adds a viewer: it gets `hello` and a `snapshot` at once, then changes. Returns its removal. */
  watch(viewer: Viewer): () => void {
    this.viewers.add(viewer);
    if (this.viewers.size === 1) this.begin();
    this.listenJobs();
    const metrics: Record<number, JobMetric[]> = {};
    for (const d of this.deps.jobs()) metrics[d.app.job] = d.metrics;
    viewer({ type: 'hello', cluster: this.cluster(), metrics });
    viewer(this.snapshot());
    return () => {
      this.viewers.delete(viewer);
      if (this.viewers.size === 0) this.end();
    };
  }

  /** Marks the snapshot stale: it is sent within `minIntervalMs`. */
  changed(): void {
    if (this.flushTimer || this.viewers.size === 0) return;
    const wait = Math.max(0, this.lastSent + this.minIntervalMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.send(this.snapshot());
    }, wait);
  }

  /** Stops timers and listeners (the gateway is closing). */
  close(): void {
    this.viewers.clear();
    this.end();
  }

  /**
   * Samples node stats now (also used by tests): one row per known node (metrics.ts, readNodes).
   * A node that did not answer keeps the numbers it last reported, marked as not live (`error`,
   * `sampledAt`); pushes/s needs two answers in a row.
   */
  async sample(): Promise<void> {
    const rows = await readNodes(this.deps);
    const now = Date.now();
    const prev = this.prev;
    this.prev = new Map();
    const last = new Map(this.nodes.map((n) => [n.node, n]));
    this.nodes = rows.map((r): NodeLoad => {
      const view = {
        node: r.node,
        state: r.state,
        up: r.up,
        error: r.error,
        masters: r.masters,
        replicas: r.replicas,
      };
      const s = r.stats;
      if (!s) {
        const p = prev.get(r.node);
        if (p) this.prev.set(r.node, p);
        const l = last.get(r.node);
        return {
          ...view,
          sampledAt: l?.sampledAt ?? null,
          connections: l?.connections ?? 0,
          frames: l?.frames ?? 0,
          errors: l?.errors ?? 0,
          keys: l?.keys ?? 0,
          bytes: l?.bytes ?? 0,
          pushes: l?.pushes ?? 0,
          pulls: l?.pulls ?? 0,
          pushesPerSec: 0,
          tables: l?.tables ?? [],
        };
      }
      let keys = 0;
      let bytes = 0;
      let pushes = 0;
      let pulls = 0;
      for (const t of s.tables) {
        keys += t.keys;
        bytes += t.bytes;
        pushes += t.pushes;
        pulls += t.pulls;
      }
      const p = prev.get(r.node);
      this.prev.set(r.node, { t: now, pushes });
      const pushesPerSec = p && now > p.t ? ((pushes - p.pushes) * 1000) / (now - p.t) : 0;
      const tables = s.tables.map(({ job, id, name, keys, bytes, pushes }) => ({ job, id, name, keys, bytes, pushes }));
      return {
        ...view,
        sampledAt: now,
        connections: s.connections,
        frames: s.frames,
        errors: s.errors,
        keys,
        bytes,
        pushes,
        pulls,
        pushesPerSec,
        tables,
      };
    });
    const c = this.cluster();
    if (c && c.ring.version !== this.ringVersion) {
      if (this.ringVersion !== -1) this.send({ type: 'cluster', cluster: c });
      this.ringVersion = c.ring.version;
    }
    this.changed();
  }

  private snapshot(): ConsoleMessage {
    this.lastSent = Date.now();
    const jobs = this.deps.jobs().map((d) => {
      const { metrics, ...s } = d.status();
      let examplesPerSec = 0;
      for (const w of s.workers) examplesPerSec += w.examplesPerSec;
      return { ...s, examplesPerSec, latest: metrics.at(-1) ?? null };
    });
    return { type: 'snapshot', t: this.lastSent, nodes: this.nodes, jobs };
  }

  private send(m: ConsoleMessage): void {
    for (const v of this.viewers) v(m);
  }

  private cluster(): ClusterInfo | null {
    try {
      return this.deps.cluster();
    } catch {
      return null; // the manager has not started
    }
  }

  /** Subscribes to jobs not yet listened to (jobs can be created while the gateway runs). */
  private listenJobs(): void {
    for (const d of this.deps.jobs()) {
      if (this.listened.has(d.app.job)) continue;
      this.listened.add(d.app.job);
      this.unlisten.push(
        d.listen({
          log: () => this.changed(),
          metric: (metric) => {
            this.send({ type: 'metric', job: d.app.job, metric });
            this.changed();
          },
        }),
      );
    }
  }

  private begin(): void {
    this.ringVersion = this.cluster()?.ring.version ?? -1;
    void this.sample();
    this.sampleTimer = setInterval(() => {
      this.listenJobs();
      void this.sample();
    }, this.sampleMs);
  }

  private end(): void {
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.sampleTimer = this.flushTimer = null;
    for (const u of this.unlisten) u();
    this.unlisten = [];
    this.listened.clear();
  }
}
