/**
 * The worker page: opening it makes this tab a worker of a job. It connects to the job's server
 * nodes (WebRTC data channels, WebSocket when ICE fails), opens a scheduler session, and runs
 * the task loop with gradients computed in a Web Worker. Its state is shown on the page and
 * exposed as `window.tabshard` for the end-to-end tests.
 */
import { type RunnerEvent, type RunnerShard, TaskRunner } from '../../client/runner.ts';
import { SchedulerSession } from '../../client/session.ts';
import { FallbackDialer } from '../../client/transports/fallback.ts';
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { WsDialer } from '../../client/transports/ws.ts';
import { Worker } from '../../client/worker.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { parseClusterInfo } from '../../shared/cluster.ts';
import { ComputeClient } from './compute-client.ts';
import { ShardCache } from './shard-cache.ts';
import './worker.css';

interface PageStatus {
  state: string;
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
  downloads: 0,
  cacheHits: 0,
};
(globalThis as unknown as { tabshard: PageStatus }).tabshard = status;

const $ = (id: string) => document.getElementById(id)!;

function render(): void {
  $('state').textContent = status.state;
  $('job').textContent = status.job === undefined ? '–' : `job ${status.job}, worker ${status.worker ?? '…'}`;
  const kinds = Object.entries(status.transports).map(([n, k]) => `${n}: ${k}`);
  $('transport').textContent = kinds.length ? kinds.join(', ') : '–';
  $('backend').textContent = status.backend ?? '–';
  $('tasks').textContent = String(status.tasks);
  $('examples').textContent = String(status.examples);
  const busy = status.computeMs + status.waitMs;
  $('split').textContent = busy ? `${Math.round((100 * status.computeMs) / busy)}% computing` : '–';
  $('shards').textContent = `${status.downloads} downloaded, ${status.cacheHits} from this browser's cache`;
  $('note').textContent = status.error
    ? `Error: ${status.error}`
    : status.fallback
      ? 'WebRTC could not connect to every server; this tab uses WebSocket for those.'
      : '';
}

async function main(): Promise<void> {
  const base = location.origin;
  const wsBase = base.replace(/^http/, 'ws');
  const params = new URLSearchParams(location.search);
  const job = Number(params.get('job') ?? (await (await fetch(`${base}/api/jobs`)).json()).jobs[0].job);
  const info = await (await fetch(`${base}/api/jobs/${job}`)).json();
  status.job = job;
  render();

  const compute = new ComputeClient('/assets/compute.worker.js', `${base}/assets/tfjs/`);
  const cache = new ShardCache(base, job, info.version);
  const ws = new WsDialer(WebSocket);
  const dialer = new FallbackDialer({
    webrtc: new WebRtcDialer({ signalling: ws }),
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
  status.state = 'connecting';
  render();
  await worker.connectAll();
  status.backend = await compute.ready;
  status.probes = compute.probes;
  const session = await SchedulerSession.open(await ws.dial(`${wsBase}/api/jobs/${job}/session`), {
    agent: navigator.userAgent,
    transport: status.fallback ? 'ws' : 'webrtc',
    worker: worker.id,
  });
  status.worker = session.worker;

  const bytes = new Map<number, Uint8Array>();
  const runner = new TaskRunner<RunnerShard>({
    worker,
    session,
    table: info.table,
    auditTable: info.auditTable,
    app: {
      async shard(index) {
        const b = await cache.shard(index);
        bytes.set(index, b);
        status.downloads = cache.downloads;
        status.cacheHits = cache.hits;
        return decodeShard(b);
      },
      gradient(shard, weights) {
        cache.saveWeights(shard.index, weights);
        return compute.gradient(shard.index, bytes.get(shard.index)!, weights.slice());
      },
    },
    onevent(ev: RunnerEvent) {
      status.state = ev.state;
      status.tasks = ev.tasks;
      status.examples = ev.examples;
      status.computeMs = ev.computeMs;
      status.waitMs = ev.waitMs;
      render();
    },
  });
  await runner.run();
  session.close();
  worker.close();
  compute.terminate();
}

main().catch((err) => {
  status.state = 'failed';
  status.error = err instanceof Error ? err.message : String(err);
  render();
});
