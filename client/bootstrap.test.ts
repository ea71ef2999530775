/**
 * The worker bootstrap on the Node platform against a real cluster in this process (server
 * nodes on TCP and WebRTC, the gateway on a real port: server/gateway/testkit.ts), reached only
 * through the gateway's URL: it trains a small job to the end over WebRTC data channels; a
 * scheduler session dropped by the scheduler (eviction closes it) is reopened after the backoff —
 * on an injected clock the test advances, so nothing sleeps — under the same worker id, and every
 * task is still applied exactly once; `stop()` mid-run leaves nothing open (a child process that
 * stops its worker exits by itself).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type GatewayCluster, gatewayCluster } from '../server/gateway/testkit.ts';
import { ManualClock } from '../shared/clock-source.ts';
import { type BootEvent, WorkerBootstrap } from './bootstrap.ts';
import { nodePlatform } from './node/platform.ts';

const SHARDS = 4;
const ITERATIONS = 2;
const TASKS = SHARDS * ITERATIONS;

interface Audit {
  tasks: number;
  once: number;
  missing: number;
  more: number;
}

/** Resolves with the next event `pick` accepts; events are collected by `sink`. */
function events() {
  const seen: BootEvent[] = [];
  const waiting: Array<{ pick: (ev: BootEvent) => boolean; resolve: (ev: BootEvent) => void }> = [];
  const sink = (ev: BootEvent) => {
    seen.push(ev);
    for (const w of [...waiting])
      if (w.pick(ev)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(ev);
      }
  };
  const next = (pick: (ev: BootEvent) => boolean) =>
    new Promise<BootEvent>((resolve) => waiting.push({ pick, resolve }));
  return { seen, sink, next };
}

describe('worker bootstrap (Node platform, real cluster)', { timeout: 120_000 }, () => {
  let cluster: GatewayCluster | null = null;
  afterEach(async () => {
    await cluster?.close();
    cluster = null;
  });

  it('trains a job to the end through the gateway alone, over WebRTC', async () => {
    cluster = await gatewayCluster({ shards: SHARDS, config: { iterations: ITERATIONS, tau: 0 } });
    const ev = events();
    const boot = new WorkerBootstrap(nodePlatform({ backends: ['wasm'] }), { url: cluster.url }, ev.sink);
    const r = await boot.start();
    assert.equal(r.totals.state, 'done');
    assert.equal(r.totals.tasks, TASKS);
    assert.equal(r.reconnects, 0);
    assert.ok(r.framesSent > 0 && r.bytes.pushed > 0 && r.bytes.pulled > 0);
    const s = boot.status;
    assert.equal(s.state, 'done');
    assert.equal(s.job, 1);
    assert.equal(s.backend, 'wasm');
    assert.deepEqual(Object.values(s.transports), ['webrtc', 'webrtc']);
    assert.deepEqual([s.downloads, s.cacheHits], [SHARDS, 0], 'each shard downloaded once, then kept');
    assert.equal(s.taskMedians?.n, TASKS);
    assert.deepEqual(s.contribution, { tasksDone: TASKS, jobTasksDone: TASKS, jobTasks: TASKS, share: 1 });
    const connected = ev.seen.filter((e) => e.type === 'connected');
    assert.equal(connected.length, 1);
    assert.equal(ev.seen.filter((e) => e.type === 'task').length, TASKS);
    const audit = await cluster.get<Audit>('/api/jobs/1/audit');
    assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [TASKS, TASKS, 0, 0]);
  });

  it('reopens a dropped scheduler session after the backoff, as the same worker; every task applied once', async () => {
    cluster = await gatewayCluster({ shards: SHARDS, config: { iterations: ITERATIONS, tau: 0 } });
    const clock = new ManualClock();
    const ev = events();
    const platform = nodePlatform({ backends: ['wasm'], clock });
    const boot = new WorkerBootstrap(platform, { url: cluster.url, transport: 'ws' }, ev.sink);
    const run = boot.start();
    await ev.next((e) => e.type === 'task' && !e.times.abandoned);
    const worker = boot.status.worker!;
    // The scheduler drops the session: its leases return (fenced) and its connection closes.
    cluster.driver.scheduler.evict(worker);
    const first = await ev.next((e) => e.type === 'dropped');
    assert.equal(boot.status.state, 'reconnecting');
    assert.deepEqual(first.type === 'dropped' && first.retryInMs, 500);
    clock.advance(499);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(boot.status.state, 'reconnecting', 'still waiting out the backoff');
    clock.advance(1);
    const back = await ev.next((e) => e.type === 'reconnected');
    assert.deepEqual(back, { type: 'reconnected', worker, reconnects: 1 });
    // Dropped again before a task was done: the backoff doubles.
    cluster.driver.scheduler.evict(worker);
    const second = await ev.next((e) => e.type === 'dropped');
    assert.deepEqual(second.type === 'dropped' && second.retryInMs, 1000);
    clock.advance(1000);
    const r = await run;
    assert.equal(r.totals.state, 'done');
    assert.equal(r.reconnects, 2);
    assert.equal(boot.status.worker, worker, 'the resume secret kept the worker id');
    assert.equal(boot.status.tasks, TASKS, 'totals carried over the sessions');
    const audit = await cluster.get<Audit>('/api/jobs/1/audit');
    assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [TASKS, TASKS, 0, 0]);
    assert.equal(clock.pending, 0, 'no timer left on the platform clock');
  });

  it('stops mid-run and leaves nothing open: the process exits by itself', async () => {
    cluster = await gatewayCluster({ shards: SHARDS, config: { iterations: 4, tau: 0 } });
    const script = fileURLToPath(new URL('./node/stop-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, cluster.url, 'auto'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const code = await Promise.race([
        new Promise<number | null>((resolve) => child.once('close', resolve)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the stopped worker did not exit; it printed ${out}`)), 30_000);
        }),
      ]);
      assert.equal(code, 0);
      const { totals, state } = JSON.parse(out);
      assert.equal(state, 'stopped');
      assert.equal(totals.state, 'stopped');
      assert.ok(totals.tasks >= 1 && totals.tasks < 4 * SHARDS, `${totals.tasks} tasks before the stop`);
      assert.equal(totals.inFlight, 0, 'the leased tasks finished');
    } finally {
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
