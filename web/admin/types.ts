/**
 * The console stream's messages as the browser reads them (server/gateway/console-feed.ts is the
 * source). The job and worker shapes come from shared/status.ts, which the server uses too.
 */
import type { ClusterInfo } from '../../shared/cluster.ts';
import type { CheckpointView, JobInsight, JobMetric, JobStatus, NodeLoad, WorkerStatus } from '../../shared/status.ts';

export type { NodeLoad };

export type Metric = JobMetric;

export type WorkerView = WorkerStatus;

export interface JobView extends Omit<JobStatus, 'inFlight'> {
  reached: boolean;
  target: { accuracy: number; logLoss?: number };
  examplesPerSec: number;
  latest: Metric | null;
  /** Absent when the cluster keeps no data directory. */
  checkpoint?: CheckpointView | null;
  /** What the model says, in the application's terms (absent for most applications). */
  insight?: JobInsight;
}

export type Hello = { type: 'hello'; cluster: ClusterInfo | null; metrics: Record<string, Metric[]> };
export type Snapshot = { type: 'snapshot'; t: number; nodes: NodeLoad[]; jobs: JobView[] };
export type MetricMsg = { type: 'metric'; job: number; metric: Metric };
export type ClusterMsg = { type: 'cluster'; cluster: ClusterInfo };
