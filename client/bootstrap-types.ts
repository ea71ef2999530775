/**
 * What the worker bootstrap (client/bootstrap.ts) is given and what it reports: the platform it
 * runs on (transports, storage, compute, clock), the run's options, the status it keeps, the
 * events it sends, and what `start()` resolves with. Apart so the bootstrap's file stays about
 * the bootstrap. Nothing here names a Node module or a DOM global: the page bundles it.
 */
import type { AppInfo } from '../apps/workers.ts';
import type { DecodedShard } from '../shared/apps/shard.ts';
import type { Clock } from '../shared/clock-source.ts';
import type { GradientResult, RunnerEvent } from './runner-types.ts';
import type { TaskTimes, taskMedians } from './task-times.ts';
import type { BackendProbe } from './tf-backend.ts';
import type { WrtcImpl } from './transports/webrtc.ts';
import type { WebSocketCtor } from './transports/ws.ts';
import type { WorkerBytes } from './worker.ts';

/** Where a job's shards are kept between reads: memory in Node, IndexedDB in the page. */
export interface ShardStore {
  /** The bytes kept for shard `index` of `job` at data `version`, if any. */
  get(job: number, version: string, index: number): Promise<Uint8Array | undefined>;
  /** Keeps them; a failure only costs a download next time. */
  put(job: number, version: string, index: number, bytes: Uint8Array): Promise<void>;
}

/** The gradient computation: tfjs in this process (Node) or in a Web Worker (the page). */
export interface WorkerCompute {
  /** Prepares the job's app and picks the tfjs backend; resolves with it and the probe's results. */
  start(app: AppInfo): Promise<{ backend: string; probes: BackendProbe[] }>;
  /** A shard the tasks will use, handed over once when first read (the page posts its bytes to its Web Worker). */
  load?(index: number, bytes: Uint8Array): void;
  /** The gradient of `shard` at the pulled `values` (one array per table of the app's `pulls`). */
  gradient(shard: DecodedShard, values: Float32Array[]): Promise<GradientResult>;
  /** Frees it (the Web Worker ends). */
  close(): void;
}

/** What the worker runs on, passed in (client/node/platform.ts, web/worker/platform.ts). */
export interface WorkerPlatform {
  /** HTTP GETs to the gateway (the global `fetch`, bound). */
  fetch: (url: string) => Promise<Response>;
  /** WebSocket constructor: the browser's, or the `ws` package's in Node. */
  WebSocket: WebSocketCtor;
  /** WebRTC for simple-peer: `@roamhq/wrtc` in Node; undefined in the browser (its own). */
  wrtc?: WrtcImpl;
  shards: ShardStore;
  compute: WorkerCompute;
  /** The bootstrap's own timers: the reconnect backoff, the contribution refresh, the CPU share's rests. */
  clock: Clock;
  /** Told to the scheduler in HELLO (shown in the console): the browser's user agent, `node v…`. */
  agent: string;
}

/** One run's settings (the page's query string, the CLI's flags). */
export interface BootOptions {
  /** The gateway, `http(s)://host[:port]`. */
  url: string;
  /** The job to join (default: the first the gateway lists). */
  job?: number;
  /**
   * `auto` (default): WebRTC, falling back to ws per node when the data channel is not open within
   * `iceTimeoutMs` (default 4000); `webrtc`: the same with 10 s to wait; `ws`: the gateway's relay only.
   */
  transport?: 'auto' | 'webrtc' | 'ws';
  iceTimeoutMs?: number;
  /** Relayed (TURN) ICE candidates only. */
  relayOnly?: boolean;
  /** Key-list caching on the node connections (default true). */
  cacheKeys?: boolean;
  /** The task loop's knobs (client/runner.ts). */
  slowdown?: number;
  stall?: { ms: number; every: number };
  prefetch?: 0 | 1;
  /** Fraction of the time spent computing, (0, 1] (client/cpu-share.ts; default 1). */
  cpuShare?: number;
  /** Ask the job's status for this worker's share of the finished tasks (default true). */
  credit?: boolean;
  /** Reconnect backoff: first delay and cap in ms (default 500 and 10 000; it doubles per failure). */
  backoff?: { firstMs: number; maxMs: number };
}

export type BootState =
  | 'starting'
  | 'connecting'
  | 'working'
  | 'waiting'
  | 'reconnecting'
  | 'paused'
  | 'done'
  | 'stopped'
  | 'failed';

/** The worker's state and counters, kept up to date in place (the page exposes it as `window.tabshard`). */
export interface BootStatus {
  state: BootState;
  /** The task loop's step while working (pulling, computing, pushing), or why it waits. */
  step?: string;
  job?: number;
  worker?: number;
  backend?: string;
  /** Backend probe results: ms per backend (null: did not initialise or skipped). */
  probes?: BackendProbe[];
  /** Per node: `webrtc` (direct), `turn` (WebRTC through a TURN server) or `ws` (the gateway's relay). */
  transports: Record<string, string>;
  /** Some node's WebRTC dial fell back to ws. */
  fallback: boolean;
  /** Totals over every scheduler session of this run. */
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  /** Shards downloaded, and read from the shard store instead. */
  downloads: number;
  cacheHits: number;
  /** Fraction of time computing allowed, (0, 1]. */
  cpuShare: number;
  paused: boolean;
  /** A task is between its lease and its TASK_DONE (with the overlapping loop, up to two are). */
  inTask: boolean;
  /** What the last finished task cost (ms; frames sent). */
  lastTask?: TaskTimes;
  /** Medians over the last RECENT_TASKS tasks. */
  taskMedians?: ReturnType<typeof taskMedians>;
  /** Values (floats) pulled from the servers. */
  pulledValues: number;
  /** Bytes sent to the servers (pushes and requests) and received from them (replies, publications). */
  bytes: { sent: number; received: number };
  /** Time rested because of the CPU share, ms. */
  restedMs: number;
  /** Scheduler sessions reopened after a drop. */
  reconnects: number;
  /** This worker's share of the job's finished tasks (from the job's status). */
  contribution?: { tasksDone: number; jobTasksDone: number; jobTasks: number; share: number };
  error?: string;
}

/** The job's description from `GET /api/jobs/:job` (what the bootstrap reads of it; the rest is kept). */
export interface JobInfo {
  name?: string;
  about?: string;
  shards: number;
  version: string;
  auditTable?: string;
  [field: string]: unknown;
}

/** What the bootstrap tells its sink, besides the status it keeps. */
export type BootEvent =
  /** `status` changed. */
  | { type: 'status' }
  | { type: 'job'; job: number; info: JobInfo }
  /** The first scheduler session is open: who this worker is and how it reaches the nodes. */
  | {
      type: 'connected';
      job: number;
      worker: number;
      backend: string;
      /** Per node, the transport kind of its connection; `routes` says `turn` where WebRTC is relayed. */
      transports: Record<string, string>;
      routes: Record<string, string>;
    }
  /** A later session is open, after `reconnects` drops. */
  | { type: 'reconnected'; worker: number; reconnects: number }
  /** The session dropped or could not be opened: the next try in `retryInMs`. */
  | { type: 'dropped'; reason: string; retryInMs: number }
  /** A task finished (TASK_DONE acknowledged) or was abandoned. */
  | { type: 'task'; times: TaskTimes };

/** Totals of the task loop over every session, in the order a RunnerEvent has them. */
export type BootTotals = Pick<
  RunnerEvent,
  'inFlight' | 'tasks' | 'examples' | 'computeMs' | 'waitMs' | 'pulledValues'
> & {
  state: 'done' | 'stopped';
};

/** What `start()` resolves with once the job is done or the run stopped. */
export interface BootResult {
  totals: BootTotals;
  bytes: WorkerBytes;
  /** Frames sent to the nodes since the first session opened. */
  framesSent: number;
  /** Wall time from the first session's opening to the end, ms (on the platform's clock). */
  wallMs: number;
  /** Tasks abandoned (their lease was lost). */
  abandoned: number;
  reconnects: number;
}
