/**
 * bench:scale-sim's simulated workers (one child process holding `--workers N` of them): each opens
 * a scheduler session over its own TCP connection and leases and reports tasks as fast as the
 * scheduler grants them, "computing" `--compute-ms` (a sleep; 0: none) per task. Prints one JSON line: every lease's latency (ms from
 * LEASE sent to TASK granted), the leases granted, and the wall time.
 */
import { parseArgs } from 'node:util';
import { SchedulerSession } from '../../client/session.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import { createRng } from '../../shared/rng.ts';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    workers: { type: 'string' },
    'compute-ms': { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
  },
});
const computeMs = Number(values['compute-ms']);
// Volunteers are not in step: each task takes 0.5–1.5× computeMs, and each worker starts at a
// random point of its first task (seeded, so a run is repeatable).
const rng = createRng(Number(values.seed ?? 1));
const jitter = () => computeMs * (0.5 + rng.next());
const n = Number(values.workers);
const dialer = tcpDialer();
const latencies: number[] = [];
const sessions = await Promise.all(
  Array.from({ length: n }, async () => SchedulerSession.open(await dialer.dial(values.address!), { agent: 'sim' })),
);
console.log(JSON.stringify({ event: 'ready', workers: n }));
// The parent says go (one line on stdin) once every child is ready.
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
const t0 = performance.now();
await Promise.all(
  sessions.map(async (s) => {
    if (computeMs > 0) await new Promise((r) => setTimeout(r, rng.next() * computeMs));
    for (;;) {
      const a = performance.now();
      const lease = await s.next();
      if (!lease) return;
      latencies.push(performance.now() - a);
      if (computeMs > 0) await new Promise((r) => setTimeout(r, jitter()));
      await s.done(lease, { examples: 1, computeMs: 0, waitMs: 0 });
    }
  }),
);
const wallMs = performance.now() - t0;
for (const s of sessions) s.close();
console.log(JSON.stringify({ event: 'done', leases: latencies.length, wallMs, latencies }));
process.exit(0);
