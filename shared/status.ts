/**
 * The JSON views of a job that the server gives and the console reads (REST, the console's
 * stream): one definition for server/ and web/.
 */

export type JobState = 'running' | 'paused' | 'stopped' | 'done';
export type TaskState = 'pending' | 'leased' | 'fencing' | 'done';

export interface WorkerStatus {
  worker: number;
  agent: string;
  transport: string;
  connected: boolean;
  /** Leases held now. */
  leases: number;
  tasksDone: number;
  /** TASK_DONEs refused because their receipts did not cover the task's pushes (PROTOCOL.md §6.3). */
  tasksRefused: number;
  examples: number;
  /** Examples per second over the last 30 s (or since the worker joined, if later). */
  examplesPerSec: number;
  /** Compute time reported in TASK_DONE. */
  computeMs: number;
  /** Time its LEASE requests were held by the scheduler plus the wait time it reported. */
  waitMs: number;
  /** Clock time of its last accepted heartbeat, or null. */
  lastHeartbeat: number | null;
  /** Clock time of the last message it sent (hello, lease, heartbeat, task done). */
  lastSeen: number;
}

export interface JobStatus {
  job: number;
  name: string;
  app: string;
  state: JobState;
  tau: number | null;
  shards: number;
  iterations: number;
  /** Iterations complete, counted from the first (all earlier ones complete too). */
  iterationsDone: number;
  /** Iterations started but not complete, with their done task counts. */
  inFlight: Array<{ iteration: number; done: number }>;
  tasks: Record<TaskState, number> & { total: number };
  /** Leases lost (expired, released on close, evicted) and so given out again. */
  reassignments: number;
  /** With backup tasks on: backup leases granted, and how many finished their task first. */
  backups?: { granted: number; won: number };
  /** LEASE requests being held now. */
  waiting: number;
  workers: WorkerStatus[];
}

/** What a job's model says, in its application's terms (e.g. LDA's top words per topic), for the console. */
export interface JobInsight {
  title: string;
  rows: Array<[string, string]>;
}

/** One held-out evaluation of a job's model. */
export interface JobMetric {
  iteration: number;
  /** ms from the job's first task lease to the iteration's completion. */
  ms: number;
  logLoss: number;
  accuracy: number;
}

/** A job's last durable checkpoint (its data directory; null when it has none yet). */
export interface CheckpointView {
  seq: number;
  /** Iterations complete at the checkpoint. */
  iteration: number;
  bytes: number;
  /** How long the job's leases were held while it was taken. */
  ms: number;
  /** When it was taken (ms since the epoch). */
  at: number;
}

/** A server node's membership state as the server manager sees it. */
export type NodeState = 'up' | 'suspect' | 'dead' | 'joining' | 'draining';
export const NODE_STATES: readonly NodeState[] = ['up', 'suspect', 'dead', 'joining', 'draining'];

/** One server node as the server manager sees it: its state and how many key ranges it holds. */
export interface NodeView {
  id: string;
  state: NodeState;
  /** Key ranges, summed over tables, this node is the master of. */
  masters: number;
  /** Key ranges, summed over tables, this node holds a replica of. */
  replicas: number;
  /** Share of the key space it masters, the mean over the tables the ring spreads (null: none defined). */
  keyShare: number | null;
}

/**
 * One server node's load as the console shows it. When the node did not answer STATS in the last
 * sample (`error` set), the numbers are the last ones it reported (`sampledAt`), not live.
 */
export interface NodeLoad {
  node: string;
  state: NodeState;
  /** Answered STATS in the last sample and is not dead (tabshard_node_up). */
  up: boolean;
  /** Why the last STATS failed, or null. */
  error: string | null;
  /** Key ranges it masters / holds a replica of; null when the manager does not say. */
  masters: number | null;
  replicas: number | null;
  /** Clock time of the STATS the numbers below come from (null: never answered, all zero). */
  sampledAt: number | null;
  connections: number;
  frames: number;
  errors: number;
  keys: number;
  bytes: number;
  pushes: number;
  pulls: number;
  /** Pushes applied per second between the last two samples. */
  pushesPerSec: number;
  tables: Array<{ job: number; id: number; name: string; keys: number; bytes: number; pushes: number }>;
}
