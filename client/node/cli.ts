/**
 * `tabshard worker --url <gateway>`: a headless Node worker. The same pieces as a browser tab
 * (client library, scheduler session, task loop), with tfjs in this process on its fastest
 * backend, the WebRTC stack from @roamhq/wrtc, and shards kept in memory.
 *
 *   tabshard worker --url http://127.0.0.1:8080 [--job N] [--transport auto|webrtc|ws] [--slowdown F]
 *                   [--stall MS:EVERY] [--relay-only] [--prefetch 0|1] [--report-tasks] [--no-key-cache]
 *
 * --slowdown F makes this worker an F× straggler (client/runner.ts): the consistency study's knob.
 * --stall MS:EVERY makes it rest MS ms after every EVERY-th task: the stragglers study's other knob.
 * --relay-only lets WebRTC use relayed (TURN) candidates only, as behind a NAT that blocks UDP to
 * the nodes: the cluster's ICE servers must then include a TURN server. The `worker` line's
 * `routes` says per node how its connection travels: `webrtc` (direct), `turn`, or `ws`.
 * --no-key-cache sends every key list in full instead of by its hash (PROTOCOL.md §5.2): the
 * traffic study's baseline.
 * --prefetch 0 runs one task at a time instead of overlapping consecutive tasks (the default, 1).
 * --report-tasks prints one `{"event":"task",…}` line per task (client/task-times.ts: lease, pull,
 * compute, push, done times in ms, the loop's wait, frames sent). The `finished` line always
 * carries the totals, the medians of those times (`medians`), frames and wall time of the run.
 */
import { parseArgs } from 'node:util';
import wrtc from '@roamhq/wrtc';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import WebSocket from 'ws';
import { bindApp, parseAppInfo } from '../../apps/workers.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { parseClusterInfo } from '../../shared/cluster.ts';
import { readAhead } from '../read-ahead.ts';
import { parseStall, TaskRunner } from '../runner.ts';
import { SchedulerSession } from '../session.ts';
import { round2, type TaskTimes, taskMedians } from '../task-times.ts';
import { initTf } from '../tf-backend.ts';
import { FallbackDialer } from '../transports/fallback.ts';
import { WebRtcDialer } from '../transports/webrtc.ts';
import { WsDialer } from '../transports/ws.ts';
import { Worker } from '../worker.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      url: { type: 'string' },
      job: { type: 'string' },
      transport: { type: 'string', default: 'auto' },
      slowdown: { type: 'string', default: '1' },
      stall: { type: 'string' },
      'relay-only': { type: 'boolean', default: false },
      prefetch: { type: 'string', default: '1' },
      'report-tasks': { type: 'boolean', default: false },
      'no-key-cache': { type: 'boolean', default: false },
    },
  });
  if (!values.url) {
    console.error(
      'usage: tabshard worker --url http://gateway [--job N] [--transport auto|webrtc|ws] [--slowdown F] [--stall MS:EVERY] [--relay-only] [--prefetch 0|1] [--report-tasks] [--no-key-cache]',
    );
    process.exit(2);
  }
  let stall: { ms: number; every: number } | undefined;
  try {
    stall = values.stall === undefined ? undefined : parseStall(values.stall);
  } catch (err) {
    usageError(`--${(err as Error).message.replace(/^invalid argument: /, '')}`);
  }
  const base = values.url.replace(/\/$/, '');
  const getJson = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  };
  const job = Number(values.job ?? (await getJson('/api/jobs')).jobs[0].job);
  const info = await getJson(`/api/jobs/${job}`);
  const math = bindApp(parseAppInfo(info));
  const backend = await initTf(tf, {});
  const ws = new WsDialer(WebSocket as unknown as ConstructorParameters<typeof WsDialer>[0]);
  const dialer = new FallbackDialer({
    webrtc: new WebRtcDialer({
      signalling: ws,
      wrtc,
      relayOnly: values['relay-only'],
      refreshIce: async () => parseClusterInfo(await getJson(`/api/jobs/${job}/cluster`)).iceServers,
    }),
    ws,
    timeoutMs: values.transport === 'webrtc' ? 10_000 : 4000,
  });
  const worker = await Worker.connect({
    seed: async () => {
      const cluster = parseClusterInfo(await getJson(`/api/jobs/${job}/cluster`));
      dialer.learn(cluster);
      return cluster;
    },
    dialers: values.transport === 'ws' ? { ws } : { webrtc: dialer, ws },
    prefer: values.transport === 'ws' ? ['ws'] : ['webrtc', 'ws'],
    job,
    cacheKeys: !values['no-key-cache'],
  });
  const transports = await worker.connectAll();
  const routes = await worker.routes();
  const session = await SchedulerSession.open(await ws.dial(`${base.replace(/^http/, 'ws')}/api/jobs/${job}/session`), {
    agent: `node ${process.version}${Number(values.slowdown) > 1 ? ` (slowdown ${values.slowdown}×)` : ''}`,
    transport: Worker.routeSummary(routes),
    worker: worker.id,
  });
  console.log(JSON.stringify({ event: 'worker', job, worker: session.worker, backend, transports, routes }));
  // Shards are kept once fetched, and the next one is fetched while a task runs.
  const loadShard = readAhead(async (index): Promise<DecodedShard> => {
    const res = await fetch(`${base}/api/jobs/${job}/shards/${index}`);
    if (!res.ok) throw new Error(`shard ${index}: HTTP ${res.status}`);
    return decodeShard(new Uint8Array(await res.arrayBuffer()));
  }, Number(info.shards));
  const tasks: TaskTimes[] = [];
  const prefetch = Number(values.prefetch);
  if (prefetch !== 0 && prefetch !== 1) usageError(`--prefetch must be 0 or 1, not ${values.prefetch}`);
  const runner = new TaskRunner<DecodedShard>({
    worker,
    session,
    auditTable: info.auditTable,
    slowdown: Number(values.slowdown),
    stall,
    prefetch,
    ontask(t) {
      tasks.push(t);
      if (values['report-tasks']) console.log(JSON.stringify({ event: 'task', ...rounded(t) }));
    },
    app: {
      shard: loadShard,
      pulls: (shard) => math.pulls(shard),
      gradient: (shard, values) => math.gradient(tf, shard, values),
    },
  });
  const stop = () => runner.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const t0 = performance.now();
  const frames0 = worker.framesSent;
  const totals = await runner.run();
  console.log(
    JSON.stringify({
      event: 'finished',
      ...totals,
      bytes: worker.bytes,
      prefetch,
      wallMs: Math.round(performance.now() - t0),
      framesSent: worker.framesSent - frames0,
      abandoned: tasks.filter((t) => t.abandoned).length,
      medians: taskMedians(tasks),
    }),
  );
  session.close();
  worker.close();
}

/** A mistake on the command line: one line, exit status 2. */
function usageError(msg: string): never {
  console.error(`tabshard worker: ${msg}`);
  process.exit(2);
}

/** A task's times rounded to 0.01 ms for its JSON line. */
function rounded(t: TaskTimes): Record<string, number | boolean> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, typeof v === 'number' ? round2(v) : v]));
}

main().then(
  () => process.exit(0),
  (err) => {
    // One line (with its cause: "fetch failed" alone names nothing); the stack with TABSHARD_DEBUG=1.
    const line = (e: unknown) => (e instanceof Error ? e.message : String(e));
    const cause = err instanceof Error && err.cause !== undefined ? `: ${line(err.cause)}` : '';
    console.error(process.env.TABSHARD_DEBUG ? err : `tabshard worker: ${line(err)}${cause}`);
    process.exit(1);
  },
);
