/**
 * The console stream's messages as the browser reads them (server/gateway/console-feed.ts is the
 * source; web/ may not import server/, so the shapes are restated here).
 */
import type { ClusterInfo } from '../../shared/cluster.ts';

export interface Metric {
  iteration: number;
  ms: number;
  logLoss: number;
  accuracy: number;
}

export interface WorkerView {
  worker: number;
  agent: string;
  transport: string;
  connected: boolean;
  leases: number;
  tasksDone: number;
  examples: number;
  examplesPerSec: number;
  computeMs: number;
  waitMs: number;
  lastHeartbeat: number | null;
  lastSeen: number;
}

export interface JobView {
  job: number;
  name: string;
  app: string;
  state: 'running' | 'paused' | 'stopped' | 'done';
  tau: number | null;
  shards: number;
  iterations: number;
  iterationsDone: number;
  tasks: { pending: number; leased: number; fencing: number; done: number; total: number };
  reassignments: number;
  waiting: number;
  workers: WorkerView[];
  reached: boolean;
  target: { accuracy: number; logLoss?: number };
  examplesPerSec: number;
  latest: Metric | null;
}

export interface NodeLoad {
  node: string;
  connections: number;
  frames: number;
  errors: number;
  keys: number;
  bytes: number;
  pushes: number;
  pulls: number;
  pushesPerSec: number;
}

export type Hello = { type: 'hello'; cluster: ClusterInfo | null; metrics: Record<string, Metric[]> };
export type Snapshot = { type: 'snapshot'; t: number; nodes: NodeLoad[]; jobs: JobView[] };
export type MetricMsg = { type: 'metric'; job: number; metric: Metric };
export type ClusterMsg = { type: 'cluster'; cluster: ClusterInfo };
