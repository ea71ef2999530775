/**
 * Prometheus metrics (fastify plugin, prom-client): `GET /metrics` in the text exposition
 * format. Values are read when scraped — server nodes' STATS and membership through the manager,
 * every job's scheduler status and latest held-out evaluation — so nothing is counted twice and
 * there is nothing to keep in step. The registry belongs to this app (tests build many apps).
 *
 * Node sources (`NodeSources`, also read by the console feed): `stats()` resolves with one entry
 * per server node, its STATS reply or `{ node, error }` when it did not answer; `nodes()` (when
 * the manager has a membership view) gives each node's state and key-range counts. Every node
 * known to any source gets `tabshard_node_up` (1 or 0), so one unreachable node no longer hides
 * the others.
 *
 * Refusals (limits.ts) are the one series counted as they happen: `tabshard_refusals_total{code,where}`
 * on the app's registry, which `collect()` does not reset.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ClusterInfo } from '../../shared/cluster.ts';
import {
  type CheckpointView,
  type JobMetric,
  type JobStatus,
  NODE_STATES,
  type NodeState,
  type NodeView,
} from '../../shared/status.ts';
import type { NodeStats } from '../node/node.ts';

export type { NodeState, NodeView };

/** A node that did not answer STATS (unreachable, timed out, refused), and why. */
export interface NodeStatsError {
  node: string;
  error: string;
}

/**
 * One entry of what `stats()` resolves with: a node's STATS reply, or why it did not answer. A
 * `stats()` that rejects as a whole counts as every known node failing with its message.
 */
export type NodeStatsResult = NodeStats | NodeStatsError;

export function isNodeStatsError(r: unknown): r is NodeStatsError {
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof (r as NodeStatsError).node === 'string' &&
    typeof (r as NodeStatsError).error === 'string'
  );
}

/** Where the gateway learns about server nodes. */
export interface NodeSources {
  /** Every node's STATS: entries are NodeStatsResult (typed loosely: the manager decodes JSON). */
  stats(): Promise<unknown[]>;
  /** Each node's state and key ranges (none: the manager has no membership view; every node 'up'). */
  nodes?: () => NodeView[];
  /** The cluster layout: the ring's nodes are known nodes too. */
  cluster?: () => ClusterInfo;
}

/** One known server node: its membership view merged with its STATS of this scrape or sample. */
export interface NodeRow {
  node: string;
  state: NodeState;
  /** From `nodes()`; null without it. */
  masters: number | null;
  replicas: number | null;
  /** Its STATS, or null when it did not answer (`error` says why). */
  stats: NodeStats | null;
  error: string | null;
  /** Answered STATS and is not dead. */
  up: boolean;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Every known node once — named by `nodes()`, by a `stats()` entry or by the ring, first seen
 * first — with its state ('up' when no view names it), its STATS or the error, and `up`.
 */
export async function readNodes(src: NodeSources): Promise<NodeRow[]> {
  let results: unknown[] = [];
  let failed: string | null = null;
  try {
    results = await src.stats();
  } catch (err) {
    failed = message(err);
  }
  let views: NodeView[] = [];
  try {
    views = src.nodes?.() ?? [];
  } catch {
    // no membership view this time: states default to 'up'
  }
  let ring: string[] = [];
  try {
    ring = src.cluster?.().ring.nodes ?? [];
  } catch {
    // the manager has not started
  }
  const view = new Map(views.map((v) => [v.id, v]));
  const answered = new Map<string, NodeStats>();
  const errors = new Map<string, string>();
  for (const r of results) {
    if (isNodeStatsError(r)) errors.set(r.node, r.error);
    else if (typeof (r as NodeStats)?.node === 'string' && Array.isArray((r as NodeStats).tables))
      answered.set((r as NodeStats).node, r as NodeStats);
  }
  const ids = new Set([...view.keys(), ...answered.keys(), ...errors.keys(), ...ring]);
  return [...ids].map((node) => {
    const v = view.get(node);
    const stats = answered.get(node) ?? null;
    const state = v?.state ?? 'up';
    return {
      node,
      state,
      masters: v?.masters ?? null,
      replicas: v?.replicas ?? null,
      stats,
      error: stats ? null : (errors.get(node) ?? failed ?? 'no STATS reply'),
      up: stats !== null && state !== 'dead',
    };
  });
}

/** The part of a job the metrics read (a JobDriver, or the console's view of one). */
export interface MetricsJob {
  status(): JobStatus & { metrics: JobMetric[]; checkpoint?: CheckpointView | null };
}

/** Where the gateway refuses something (the `where` label of `tabshard_refusals_total`). */
export const REFUSAL_WHERE = ['origin', 'ws-size', 'sessions', 'relays', 'ws-rate', 'http-rate'] as const;
export type RefusalWhere = (typeof REFUSAL_WHERE)[number];

/** The code each kind of refusal answers with. */
export const REFUSAL_CODE: Record<
  RefusalWhere,
  'TS_ERR_BAD_ORIGIN' | 'TS_ERR_FRAME_TOO_LARGE' | 'TS_ERR_RATE_LIMITED'
> = {
  origin: 'TS_ERR_BAD_ORIGIN',
  'ws-size': 'TS_ERR_FRAME_TOO_LARGE',
  sessions: 'TS_ERR_RATE_LIMITED',
  relays: 'TS_ERR_RATE_LIMITED',
  'ws-rate': 'TS_ERR_RATE_LIMITED',
  'http-rate': 'TS_ERR_RATE_LIMITED',
};

/** Counts one refusal. */
export type CountRefusal = (where: RefusalWhere) => void;

/**
 * `tabshard_refusals_total{code,where}` on `registry`, every series present from the start (at
 * 0, so rate() works from the first scrape); returns what counts one refusal.
 */
export function refusalCounter(registry: Registry): CountRefusal {
  const counter = new Counter({
    name: 'tabshard_refusals_total',
    help: 'Requests and connections the gateway refused (Origin, message size, per-address limits), by error code and where',
    labelNames: ['code', 'where'],
    registers: [registry],
  });
  for (const where of REFUSAL_WHERE) counter.inc({ code: REFUSAL_CODE[where], where }, 0);
  return (where) => counter.inc({ code: REFUSAL_CODE[where], where });
}

export interface MetricsPluginOptions extends NodeSources {
  jobs(): MetricsJob[];
  /** The registry to expose (default: a fresh one); series registered on it by others are kept. */
  registry?: Registry;
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const registry = opts.registry ?? new Registry();
  const gauges: Gauge[] = [];
  const gauge = (name: string, help: string, labelNames: string[]) => {
    const g = new Gauge({ name, help, labelNames, registers: [registry] });
    gauges.push(g);
    return g;
  };
  const node = {
    keys: gauge('tabshard_node_keys', 'Keys stored by a server node (per table)', ['node', 'job', 'table']),
    bytes: gauge('tabshard_node_bytes', 'Bytes of parameters stored by a server node (per table)', [
      'node',
      'job',
      'table',
    ]),
    pushes: gauge('tabshard_node_pushes', 'Pushes applied by a server node since it started (per table)', [
      'node',
      'job',
      'table',
    ]),
    pulls: gauge('tabshard_node_pulls', 'Pulls answered by a server node since it started (per table)', [
      'node',
      'job',
      'table',
    ]),
    connections: gauge('tabshard_node_connections', 'Open connections of a server node', ['node']),
    refused: gauge(
      'tabshard_node_refused',
      'Requests a server node refused for want of a capability, by code, since it started (PROTOCOL.md §6.2)',
      ['node', 'code'],
    ),
    bounded: gauge('tabshard_node_bounded', "Pushes a server node refused over a table's bounds (per table)", [
      'node',
      'job',
      'table',
    ]),
    copiesPending: gauge(
      'tabshard_node_copies_pending',
      'Range-copy (MIGRATE) frames a server node sent and not yet had acknowledged: a join, drain or failover copying',
      ['node'],
    ),
    copyBytes: gauge('tabshard_node_copy_bytes', 'Payload (keys and rows) a server node has sent in range copies', [
      'node',
    ]),
    up: gauge('tabshard_node_up', '1 when the server node answered STATS and is not dead, else 0 (every known node)', [
      'node',
    ]),
    state: gauge('tabshard_node_state', "A server node's state: 1 for the one it is in, 0 for the others", [
      'node',
      'state',
    ]),
    ranges: gauge(
      'tabshard_node_ranges',
      'Key ranges (summed over tables) a server node masters or holds a replica of',
      ['node', 'role'],
    ),
  };
  const job = {
    workers: gauge('tabshard_job_workers', 'Workers of a job: connected now, or ever admitted', ['job', 'state']),
    tasks: gauge('tabshard_job_tasks', 'Tasks of a job by state (pending, leased, fencing, done)', ['job', 'state']),
    reassignments: gauge('tabshard_job_reassignments', 'Leases lost and handed out again', ['job']),
    iterations: gauge('tabshard_job_iterations_done', 'Iterations complete', ['job']),
    tau: gauge('tabshard_job_tau', 'Consistency bound tau (+Inf: asynchronous)', ['job']),
    running: gauge('tabshard_job_running', '1 while the job hands out tasks', ['job']),
    loss: gauge('tabshard_job_heldout_logloss', 'Held-out log-loss after the last evaluated iteration', ['job']),
    accuracy: gauge('tabshard_job_heldout_accuracy', 'Held-out accuracy after the last evaluated iteration', ['job']),
    checkpointIteration: gauge('tabshard_job_checkpoint_iteration', 'Iterations complete at the last checkpoint', [
      'job',
    ]),
    checkpointTime: gauge(
      'tabshard_job_checkpoint_timestamp_seconds',
      'When the last checkpoint was taken (Unix time)',
      ['job'],
    ),
    checkpointBytes: gauge('tabshard_job_checkpoint_bytes', 'Size of the last checkpoint (node files and manifest)', [
      'job',
    ]),
  };
  const worker = {
    tasks: gauge('tabshard_worker_tasks_done', 'Tasks a worker finished', ['job', 'worker']),
    refused: gauge(
      'tabshard_worker_tasks_refused',
      'TASK_DONEs of a worker refused: its receipts did not cover the pushes',
      ['job', 'worker'],
    ),
    examples: gauge('tabshard_worker_examples_per_second', 'Examples per second (30 s window)', ['job', 'worker']),
    compute: gauge('tabshard_worker_compute_seconds', 'Time a worker reported computing', ['job', 'worker']),
    wait: gauge('tabshard_worker_wait_seconds', 'Time a worker waited for work', ['job', 'worker']),
  };

  let scrape: Promise<string> = Promise.resolve('');
  async function collect(): Promise<void> {
    // Gauges only: the refusal counter counts on.
    for (const g of gauges) g.reset();
    for (const r of await readNodes(opts)) {
      const n = { node: r.node };
      node.up.set(n, r.up ? 1 : 0);
      for (const state of NODE_STATES) node.state.set({ ...n, state }, r.state === state ? 1 : 0);
      if (r.masters !== null) node.ranges.set({ ...n, role: 'master' }, r.masters);
      if (r.replicas !== null) node.ranges.set({ ...n, role: 'replica' }, r.replicas);
      const s = r.stats;
      if (!s) continue;
      node.connections.set(n, s.connections);
      for (const [code, count] of Object.entries(s.access?.refused ?? {})) node.refused.set({ ...n, code }, count ?? 0);
      if (s.replication) {
        node.copiesPending.set(n, s.replication.copiesPending);
        node.copyBytes.set(n, s.replication.copyBytes);
      }
      for (const t of s.tables) {
        const l = { node: s.node, job: String(t.job), table: t.name };
        node.keys.set(l, t.keys);
        node.bytes.set(l, t.bytes);
        node.pushes.set(l, t.pushes);
        node.pulls.set(l, t.pulls);
        node.bounded.set(l, t.bounded ?? 0);
      }
    }
    for (const d of opts.jobs()) {
      const s = d.status();
      const j = { job: String(s.job) };
      job.workers.set({ ...j, state: 'connected' }, s.workers.filter((w) => w.connected).length);
      job.workers.set({ ...j, state: 'total' }, s.workers.length);
      for (const state of ['pending', 'leased', 'fencing', 'done'] as const)
        job.tasks.set({ ...j, state }, s.tasks[state]);
      job.reassignments.set(j, s.reassignments);
      job.iterations.set(j, s.iterationsDone);
      job.tau.set(j, s.tau ?? Number.POSITIVE_INFINITY);
      job.running.set(j, s.state === 'running' ? 1 : 0);
      if (s.checkpoint) {
        job.checkpointIteration.set(j, s.checkpoint.iteration);
        job.checkpointTime.set(j, s.checkpoint.at / 1000);
        job.checkpointBytes.set(j, s.checkpoint.bytes);
      }
      const m = s.metrics.at(-1);
      if (m) {
        job.loss.set(j, m.logLoss);
        job.accuracy.set(j, m.accuracy);
      }
      for (const w of s.workers) {
        const l = { ...j, worker: String(w.worker) };
        worker.tasks.set(l, w.tasksDone);
        worker.refused.set(l, w.tasksRefused);
        worker.examples.set(l, w.examplesPerSec);
        worker.compute.set(l, w.computeMs / 1000);
        worker.wait.set(l, w.waitMs / 1000);
      }
    }
  }

  app.get(
    '/metrics',
    {
      // Admin token (Bearer, as Prometheus' `authorization` scrape setting sends it): the series name nodes and workers.
      config: { admin: true },
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['metrics'],
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
    },
    async (_req, reply) => {
      // One scrape at a time: collect() resets and refills the shared gauges.
      const text = scrape
        .catch(() => '')
        .then(async () => {
          await collect();
          return registry.metrics();
        });
      scrape = text;
      return reply.type(registry.contentType).send(await text);
    },
  );
}
