/**
 * bench:scale-sim — how many volunteers one scheduler serves: N simulated workers (light protocol
 * clients in child processes, one TCP connection and scheduler session each, computing nothing)
 * lease and report the tasks of one ASP job (`--shards` × `--iterations`), each "computing" a task
 * for `--compute-ms` (default 400 ms: 1,000 workers then offer 2,500 leases/s; 0: as fast as the
 * scheduler grants them, a saturated queue whose latency is queueing by Little's law). The scheduler runs alone in this process (no server nodes, no receipts: its own
 * cost), over real TCP. Reports leases/s sustained, lease latency p50/p99, and the scheduler's
 * heap per admitted worker (measured after GC, before and after the sessions open). JSON line on
 * stdout (`scale-sim`).
 *
 *   npm run bench:scale-sim [-- --workers 1000 --children 2 --shards 1000 --iterations 20 --compute-ms 400]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Scheduler } from '../../server/scheduler/scheduler.ts';
import { tcpListen } from '../../server/transports/tcp.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1000' },
    children: { type: 'string', default: '2' },
    shards: { type: 'string', default: '1000' },
    iterations: { type: 'string', default: '20' },
    'compute-ms': { type: 'string', default: '400' },
  },
});
const computeMs = Number(values['compute-ms']);
const workers = Number(values.workers);
const children = Number(values.children);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench:scale-sim does)');
const heap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

const sched = new Scheduler(
  {
    job: 1,
    name: 'scale-sim',
    app: 'sim',
    shards: Number(values.shards),
    iterations: Number(values.iterations),
    tau: null,
    leaseMs: 60_000,
    heartbeatMs: 20_000,
  },
  { fence: async () => {} },
);
const listener = await tcpListen({});
listener.onconnection = (conn) => sched.serve(conn);
const heap0 = heap();

const kids = Array.from({ length: children }, (_, i) => {
  const n = Math.floor(workers / children) + (i < workers % children ? 1 : 0);
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', 'bench/scale-sim/client.ts', '--address', listener.address],
      ...['--workers', String(n), '--compute-ms', String(computeMs), '--seed', String(i + 1)],
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (!l.startsWith('{')) return;
    lines.push(JSON.parse(l));
    for (const w of waiters.splice(0)) w();
  });
  const line = async (event: string) => {
    for (;;) {
      const found = lines.find((l) => l.event === event);
      if (found) return found;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { child, line };
});
try {
  await Promise.all(kids.map((k) => k.line('ready')));
  const heap1 = heap();
  const t0 = performance.now();
  for (const k of kids) k.child.stdin!.write('go\n');
  const done = (await Promise.all(kids.map((k) => k.line('done')))) as Array<{ leases: number; latencies: number[] }>;
  const wallMs = performance.now() - t0;
  const lat = done.flatMap((d) => d.latencies).sort((a, b) => a - b);
  const q = (p: number) => +lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
  const leases = done.reduce((n, d) => n + d.leases, 0);
  console.log(
    JSON.stringify({
      bench: 'scale-sim',
      workers,
      children,
      computeMs,
      offeredLeasesPerSecond: computeMs > 0 ? Math.round((1000 * workers) / computeMs) : null,
      tasks: Number(values.shards) * Number(values.iterations),
      leases,
      wallMs: Math.round(wallMs),
      leasesPerSecond: Math.round((1000 * leases) / wallMs),
      latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) },
      schedulerHeapPerWorkerBytes: Math.round((heap1 - heap0) / workers),
      goals: { leasesPerSecond: 2000, p99Ms: 50 },
      state: sched.status().state,
    }),
  );
} finally {
  for (const k of kids) if (k.child.exitCode === null) k.child.kill('SIGKILL');
  sched.stop();
  await listener.close();
}
