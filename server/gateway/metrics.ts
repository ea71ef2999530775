/**
 * Prometheus metrics (fastify plugin, prom-client): `GET /metrics` in the text exposition
 * format. Values are read when scraped — server nodes' STATS through the manager, every job's
 * scheduler status and latest held-out evaluation — so nothing is counted twice and there is
 * nothing to keep in step. The registry belongs to this app (tests build many apps).
 */
import type { FastifyInstance } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import type { ConsoleJob } from './console-feed.ts';

export interface MetricsPluginOptions {
  stats(): Promise<unknown[]>;
  jobs(): ConsoleJob[];
}

interface NodeStatsLike {
  node: string;
  connections: number;
  tables: Array<{ job: number; name: string; keys: number; bytes: number; pushes: number; pulls: number }>;
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[]) =>
    new Gauge({ name, help, labelNames, registers: [registry] });
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
    up: gauge('tabshard_node_up', '1 when the server node answered STATS', ['node']),
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
  };
  const worker = {
    tasks: gauge('tabshard_worker_tasks_done', 'Tasks a worker finished', ['job', 'worker']),
    examples: gauge('tabshard_worker_examples_per_second', 'Examples per second (30 s window)', ['job', 'worker']),
    compute: gauge('tabshard_worker_compute_seconds', 'Time a worker reported computing', ['job', 'worker']),
    wait: gauge('tabshard_worker_wait_seconds', 'Time a worker waited for work', ['job', 'worker']),
  };

  let scrape: Promise<string> = Promise.resolve('');
  async function collect(): Promise<void> {
    registry.resetMetrics();
    let stats: NodeStatsLike[] = [];
    try {
      stats = (await opts.stats()) as NodeStatsLike[];
    } catch {
      // a node is unreachable: tabshard_node_up is missing for every node in this scrape
    }
    for (const s of stats) {
      node.up.set({ node: s.node }, 1);
      node.connections.set({ node: s.node }, s.connections);
      for (const t of s.tables) {
        const l = { node: s.node, job: String(t.job), table: t.name };
        node.keys.set(l, t.keys);
        node.bytes.set(l, t.bytes);
        node.pushes.set(l, t.pushes);
        node.pulls.set(l, t.pulls);
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
      const m = s.metrics.at(-1);
      if (m) {
        job.loss.set(j, m.logLoss);
        job.accuracy.set(j, m.accuracy);
      }
      for (const w of s.workers) {
        const l = { ...j, worker: String(w.worker) };
        worker.tasks.set(l, w.tasksDone);
        worker.examples.set(l, w.examplesPerSec);
        worker.compute.set(l, w.computeMs / 1000);
        worker.wait.set(l, w.waitMs / 1000);
      }
    }
  }

  app.get(
    '/metrics',
    {
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
