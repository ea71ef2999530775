/**
 * The worker page (the volunteer's page): opening it makes this tab a worker of a job. It
 * connects to the job's server nodes (WebRTC data channels, WebSocket when ICE fails), opens a
 * scheduler session, and runs the task loop with gradients computed in a Web Worker. The
 * volunteer sees what is trained and why, the tab's state and contribution, and controls the
 * CPU share and pause (client/cpu-share.ts, the runner's gate). A dropped scheduler session is
 * reopened with backoff (state `reconnecting`). Its state is exposed as `window.tabshard` for
 * the end-to-end tests, with what the last task cost and the medians over recent tasks
 * (client/task-times.ts: lease, pull, compute, push, done, frames).
 */
import { bindApp, parseAppInfo } from '../../apps/workers.ts';
import { CpuShare } from '../../client/cpu-share.ts';
import { readAhead } from '../../client/read-ahead.ts';
import { parseStall, type RunnerEvent, TaskRunner } from '../../client/runner.ts';
import { SchedulerSession } from '../../client/session.ts';
import { type TaskTimes, taskMedians } from '../../client/task-times.ts';
import { FallbackDialer } from '../../client/transports/fallback.ts';
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { WsDialer } from '../../client/transports/ws.ts';
import { Worker } from '../../client/worker.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { parseClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import { ComputeClient } from './compute-client.ts';
import { ShardCache } from './shard-cache.ts';
import { VisibilityLog, type VisibilityRecord } from './visibility.ts';
import './worker.css';

type TabState = 'starting' | 'connecting' | 'working' | 'waiting' | 'reconnecting' | 'paused' | 'done' | 'failed';

interface PageStatus {
  state: TabState;
  /** The task loop's step while working (pulling, computing, pushing), or why it waits. */
  step?: string;
  job?: number;
  worker?: number;
  backend?: string;
  /** Backend probe results: ms per backend (null: did not initialise or skipped). */
  probes?: Array<{ backend: string; ms: number | null; error?: string }>;
  transports: Record<string, string>;
  fallback: boolean;
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  downloads: number;
  cacheHits: number;
  /** Fraction of time computing the volunteer allows, (0, 1]. */
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
  /** Bytes this tab sent to the servers (pushes and requests) and received from them (replies, publications). */
  bytes: { sent: number; received: number };
  /** Time rested because of the CPU share, ms. */
  restedMs: number;
  /** Scheduler sessions reopened after a drop. */
  reconnects: number;
  /** This tab's share of the job's finished tasks (from the job's status). */
  contribution?: { tasksDone: number; jobTasksDone: number; jobTasks: number; share: number };
  visibility?: VisibilityRecord;
  error?: string;
}

const status: PageStatus = {
  state: 'starting',
  transports: {},
  fallback: false,
  tasks: 0,
  examples: 0,
  computeMs: 0,
  waitMs: 0,
  pulledValues: 0,
  bytes: { sent: 0, received: 0 },
  downloads: 0,
  cacheHits: 0,
  cpuShare: 1,
  paused: false,
  inTask: false,
  restedMs: 0,
  reconnects: 0,
};
(globalThis as unknown as { tabshard: PageStatus }).tabshard = status;

/** How many recent tasks the medians cover. */
const RECENT_TASKS = 100;
const recent: TaskTimes[] = [];

const $ = (id: string) => document.getElementById(id)!;
const visibility = new VisibilityLog(() => render());
status.visibility = visibility.rec;

const STATE_TEXT: Record<TabState, string> = {
  starting: 'Starting',
  connecting: 'Connecting to the servers',
  working: 'Working',
  waiting: 'Waiting for work',
  reconnecting: 'Reconnecting',
  paused: 'Paused',
  done: 'Done — the job is finished. Thank you!',
  failed: 'Stopped by an error',
};

function render(): void {
  $('state').textContent = STATE_TEXT[status.state];
  $('state-dot').className = `dot s-${status.state}`;
  $('state-detail').textContent = status.step ?? '';
  $('job').textContent = status.job === undefined ? '–' : `job ${status.job}, worker ${status.worker ?? '…'}`;
  const kinds = Object.entries(status.transports).map(([n, k]) => `${n}: ${k}`);
  $('transport').textContent = kinds.length ? kinds.join(', ') : '–';
  $('backend').textContent = status.backend ?? '–';
  $('tasks').textContent = String(status.tasks);
  $('examples').textContent = status.examples.toLocaleString('en');
  const c = status.contribution;
  $('share-of-job').textContent = c
    ? `${(100 * c.share).toFixed(1)} % of the tasks done so far (${c.tasksDone} of ${c.jobTasksDone})`
    : '–';
  $('job-progress').textContent = c ? `${c.jobTasksDone} of ${c.jobTasks} tasks done` : '–';
  const busy = status.computeMs + status.waitMs;
  const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
  $('traffic').textContent = `${mb(status.bytes.sent)} sent, ${mb(status.bytes.received)} received`;
  $('split').textContent = busy ? `${Math.round((100 * status.computeMs) / busy)} % computing` : '–';
  const m = status.taskMedians;
  $('task-times').textContent =
    m && m.n > 0
      ? `lease ${ms(m.leaseMs)} · pull ${ms(m.pullMs)} · compute ${ms(m.computeMs)} · push ${ms(m.pushMs)} · done ${ms(m.doneMs)}; ${m.frames} frames (median of ${m.n})`
      : '–';
  $('shards').textContent = `${status.downloads} downloaded, ${status.cacheHits} from this browser's cache`;
  $('hidden').textContent = visibility.describe();
  $('pause').textContent = status.paused ? 'Resume' : 'Pause';
  $('share-value').textContent = `${Math.round(status.cpuShare * 100)} %`;
  $('note').textContent = status.error
    ? `Error: ${status.error}`
    : status.fallback
      ? 'WebRTC could not connect to every server; this tab uses WebSocket for those.'
      : '';
}

const ms = (x: number | null) => (x === null ? '–' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);

function setState(state: TabState, step?: string): void {
  // A pause wins over what the loop reports until the volunteer resumes.
  if (state === 'reconnecting' || state === 'done' || state === 'failed') status.inTask = false;
  if (status.paused && state !== 'failed' && state !== 'done' && state !== 'reconnecting') {
    step = status.inTask ? 'finishing the current task' : 'no new tasks until you resume';
    state = 'paused';
  }
  status.state = state;
  status.step = step;
  render();
}

const cpu = new CpuShare({
  onchange: (s) => {
    status.restedMs = cpu.restedMs;
    if (s.paused) setState('paused');
    else if (s.restingMs > 0) setState('waiting', `resting ${Math.round(s.restingMs)} ms (CPU use limit)`);
  },
});

function controls(): void {
  const params = new URLSearchParams(location.search);
  const slider = $('share') as HTMLInputElement;
  const saved = Number(params.get('cpu') ?? localStorage.getItem('tabshard.cpuShare') ?? 1);
  cpu.share = saved;
  status.cpuShare = cpu.share;
  slider.value = String(Math.round(cpu.share * 100));
  slider.addEventListener('input', () => {
    cpu.share = Number(slider.value) / 100;
    status.cpuShare = cpu.share;
    localStorage.setItem('tabshard.cpuShare', String(cpu.share));
    render();
  });
  $('pause').addEventListener('click', () => {
    status.paused = !status.paused;
    if (status.paused) cpu.pause();
    else {
      cpu.resume();
      setState('waiting');
    }
    render();
  });
}

/** Failures after which the scheduler session is reopened rather than the page giving up. */
const RETRY = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_CONNECT_FAILED', 'TS_ERR_TIMEOUT']);
const retryable = (err: unknown) => err instanceof TabshardError && RETRY.has(err.code);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  controls();
  const base = location.origin;
  const wsBase = base.replace(/^http/, 'ws');
  const params = new URLSearchParams(location.search);
  const job = Number(params.get('job') ?? (await (await fetch(`${base}/api/jobs`)).json()).jobs[0].job);
  const info = await (await fetch(`${base}/api/jobs/${job}`)).json();
  status.job = job;
  $('about').textContent = `Job “${info.name}”: ${info.about ?? ''}`;
  setState('connecting');

  const appInfo = parseAppInfo(info);
  const math = bindApp(appInfo);
  const compute = new ComputeClient('/assets/compute.worker.js', `${base}/assets/tfjs/`, appInfo);
  const cache = new ShardCache(base, job, info.version);
  const ws = new WsDialer(WebSocket);
  const dialer = new FallbackDialer({
    // ?relay=1: relayed (TURN) candidates only, as behind a NAT that lets nothing else through.
    webrtc: new WebRtcDialer({
      signalling: ws,
      relayOnly: params.get('relay') === '1',
      refreshIce: async () =>
        parseClusterInfo(await (await fetch(`${base}/api/jobs/${job}/cluster`)).json()).iceServers,
    }),
    ws,
    timeoutMs: Number(params.get('iceTimeoutMs') ?? 4000),
    ondial: (rec) => {
      status.transports[rec.node] = rec.kind;
      if (rec.kind === 'ws') status.fallback = true;
      render();
    },
  });
  const worker = await Worker.connect({
    seed: async () => {
      const cluster = parseClusterInfo(await (await fetch(`${base}/api/jobs/${job}/cluster`)).json());
      dialer.learn(cluster);
      return cluster;
    },
    dialers: { webrtc: dialer, ws },
    prefer: ['webrtc', 'ws'],
    job,
  });
  await worker.connectAll();
  // Per node: `webrtc` (direct), `turn` (WebRTC through a TURN server) or `ws` (the gateway's relay).
  status.transports = await worker.routes();
  render();
  status.backend = await compute.ready;
  status.probes = compute.probes;

  const refresh = async () => {
    const s = await (await fetch(`${base}/api/jobs/${job}`)).json();
    const me = s.workers.find((w: { worker: number }) => w.worker === status.worker);
    const tasksDone = me?.tasksDone ?? 0;
    status.contribution = {
      tasksDone,
      jobTasksDone: s.tasks.done,
      jobTasks: s.tasks.total,
      share: s.tasks.done ? tasksDone / s.tasks.done : 0,
    };
    render();
  };
  let refreshedAt = 0;
  const refreshSoon = () => {
    if (performance.now() - refreshedAt < 2000) return;
    refreshedAt = performance.now();
    refresh().catch(() => {});
  };
  const refreshTimer = setInterval(refreshSoon, 5000);

  const bytes = new Map<number, Uint8Array>();
  // Each shard is read once (IndexedDB or the network), and the next one while a task runs.
  const shardBytes = readAhead((index) => cache.shard(index), info.shards);
  const app = {
    async shard(index: number) {
      const b = await shardBytes(index);
      bytes.set(index, b);
      status.downloads = cache.downloads;
      status.cacheHits = cache.hits;
      return decodeShard(b);
    },
    pulls: (shard: DecodedShard) => math.pulls(shard),
    async gradient(shard: DecodedShard, values: Float32Array[]) {
      const t0 = performance.now();
      const g = await compute.gradient(shard.index, bytes.get(shard.index)!, values);
      cpu.computed(performance.now() - t0);
      return g;
    },
  };

  /** The resume secret of the last session's worker id (kept in memory only: a reload is a new worker). */
  let resume: string | undefined;
  // Totals of earlier sessions (the runner counts per session).
  const before = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
  for (let backoff = 500; ; ) {
    let session: SchedulerSession;
    try {
      session = await SchedulerSession.open(await ws.dial(`${wsBase}/api/jobs/${job}/session`), {
        agent: navigator.userAgent,
        transport: Worker.routeSummary(status.transports),
        // The scheduler keeps an id only for the session that shows its resume secret.
        ...(status.worker !== undefined && resume !== undefined ? { worker: status.worker, resume } : {}),
      });
    } catch (err) {
      if (!retryable(err)) throw err;
      setState('reconnecting', `retrying in ${backoff / 1000} s`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10_000);
      continue;
    }
    status.worker = session.worker;
    resume = session.resume;
    const stallParam = params.get('stall');
    const pageStall = stallParam === null ? undefined : parseStall(stallParam);
    let lastTasks = 0;
    const runner = new TaskRunner<DecodedShard>({
      worker,
      session,
      auditTable: info.auditTable,
      app,
      // ?slowdown=F makes this tab an F× straggler (the consistency study's knob; client/runner.ts).
      slowdown: Math.max(1, Number(params.get('slowdown') ?? 1) || 1),
      // ?stall=MS:EVERY makes it rest MS ms after every EVERY-th task (the stragglers study's knob).
      stall: pageStall,
      gate: cpu.gate,
      ontask(t) {
        if (t.abandoned) return;
        status.lastTask = t;
        recent.push(t);
        if (recent.length > RECENT_TASKS) recent.shift();
        status.taskMedians = taskMedians(recent);
      },
      onevent(ev: RunnerEvent) {
        status.inTask = ev.inFlight > 0;
        if (ev.tasks > lastTasks) {
          visibility.task(ev.examples - status.examples + before.examples);
          lastTasks = ev.tasks;
          backoff = 500;
          refreshSoon();
        }
        status.tasks = before.tasks + ev.tasks;
        status.examples = before.examples + ev.examples;
        status.computeMs = before.computeMs + ev.computeMs;
        status.waitMs = before.waitMs + ev.waitMs;
        status.pulledValues = before.pulledValues + ev.pulledValues;
        const b = worker.bytes;
        status.bytes = { sent: b.pushed + b.requested, received: b.pulled + b.published };
        if (ev.state === 'done' || ev.state === 'stopped') setState('done');
        else if (ev.state === 'waiting') setState('waiting', ev.lease ? undefined : 'asking the scheduler for a task');
        else setState('working', ev.state);
      },
    });
    try {
      await runner.run();
      session.close();
      break;
    } catch (err) {
      session.close();
      if (!retryable(err)) throw err;
      Object.assign(before, {
        tasks: status.tasks,
        examples: status.examples,
        computeMs: status.computeMs,
        waitMs: status.waitMs,
        pulledValues: status.pulledValues,
      });
      status.reconnects++;
      setState('reconnecting', `the scheduler connection dropped; retrying in ${backoff / 1000} s`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
  clearInterval(refreshTimer);
  await refresh().catch(() => {});
  worker.close();
  compute.terminate();
}

main().catch((err) => {
  status.error = err instanceof Error ? err.message : String(err);
  setState('failed');
});
