/**
 * bench:traffic-link — one worker behind a slow link (docs/architecture.md §7): the cluster in one
 * network namespace, a headless worker (`tabshard worker`, WebRTC) in another, joined by a veth
 * pair shaped to `--rate` each way with `tc … tbf` (e2e/netns.ts; root and iproute2 needed; the
 * machine's own interfaces are never touched). The job runs with no traffic technique (key lists
 * in full, float32, nothing deflated) and with all of them (key caching, `--push-values q8`,
 * `--pull-values f16`, `--compress`), `--repeats` times each, going round.
 *
 * Per run: the worker's wall time for the whole job (shard downloads included: each shard's data
 * comes over the link once, at its first task), the time per iteration after the first (every
 * shard's data in hand: training traffic only), its bytes, the final held-out log-loss.
 * JSON lines: `traffic-link` per run, `traffic-link-summary` with medians and none / all.
 *
 *   npm run bench:traffic-link [-- --rate 10mbit --data ctr --examples 500000 --shards 8
 *       --iterations 4 --repeats 1 --techniques none,all,all-f16]
 *
 * `all-f16` is `all` with F16 pushes instead of Q8; `cache` is key caching alone (lossless).
 */
import { parseArgs } from 'node:util';
import { type ClusterEvent, runWorkerCli, startCluster, stopCluster } from '../e2e/harness.ts';
import { createLink } from '../e2e/netns.ts';
import { median } from './consistency/run.ts';

const TECHNIQUES: Record<string, { start: string[]; worker: string[] }> = {
  none: { start: [], worker: ['--no-key-cache'] },
  cache: { start: [], worker: [] },
  all: { start: ['--push-values', 'q8', '--pull-values', 'f16', '--compress'], worker: [] },
  'all-f16': { start: ['--push-values', 'f16', '--pull-values', 'f16', '--compress'], worker: [] },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '10mbit' },
      data: { type: 'string', default: 'ctr' },
      examples: { type: 'string', default: '500000' },
      shards: { type: 'string', default: '8' },
      iterations: { type: 'string', default: '4' },
      nodes: { type: 'string', default: '2' },
      repeats: { type: 'string', default: '1' },
      techniques: { type: 'string', default: 'none,all' },
    },
  });
  const techniques = values.techniques.split(',');
  for (const t of techniques) if (!TECHNIQUES[t]) throw new TypeError(`unknown technique ${t}`);
  const link = createLink({ rate: values.rate });
  const walls: Record<string, number[]> = Object.fromEntries(techniques.map((t) => [t, []]));
  const steady: Record<string, number[]> = Object.fromEntries(techniques.map((t) => [t, []]));
  // An interrupted run still removes its namespaces (and with them whatever runs inside).
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      link.close();
      process.exit(130);
    });
  try {
    // Repeats go round the techniques, so a noisy stretch of the shared machine spreads over both.
    for (let repeat = 0; repeat < Number(values.repeats); repeat++)
      for (const name of techniques) {
        const t = TECHNIQUES[name];
        const metrics: ClusterEvent[] = [];
        const iterations = Number(values.iterations);
        // The last evaluation comes after the worker's last TASK_DONE: wait for it before stopping.
        let lastMetric: () => void = () => {};
        const evaluated = new Promise<void>((resolve) => {
          lastMetric = resolve;
        });
        const startArgs = [
          ...['--host', link.addrA, '--data', values.data, '--app', 'logreg', '--examples', values.examples],
          ...['--shards', values.shards, '--iterations', values.iterations, '--lease-ms', '60000'],
          ...t.start,
        ];
        const { child, ready } = await startCluster(
          { nodes: Number(values.nodes), netns: link.a, startArgs, startTimeoutMs: 300_000 },
          (ev) => {
            if (ev.event !== 'metric') return;
            metrics.push(ev);
            if (ev.iteration === iterations - 1) lastMetric();
          },
        );
        const worker = runWorkerCli(ready.gateway, ['--job', '1', ...t.worker], {}, link.b);
        try {
          const code = await worker.exit;
          const finished = worker.line('finished') as
            | { wallMs: number; tasks: number; bytes: Record<string, number>; medians: Record<string, number> }
            | undefined;
          if (code !== 0 || !finished) throw new Error(`the worker exited with ${code}`);
          await Promise.race([evaluated, new Promise((r) => setTimeout(r, 120_000))]);
          walls[name].push(finished.wallMs);
          const last = metrics.at(-1) as { logLoss?: number; ms?: number } | undefined;
          // Iterations after the first, when the worker holds every shard's data (a shard is
          // downloaded once, at its first task, and the traffic options do not touch that).
          const first = metrics.find((m) => m.iteration === 0) as { ms?: number } | undefined;
          const perIterationMs =
            first?.ms !== undefined && last?.ms !== undefined && iterations > 1
              ? Math.round((last.ms - first.ms) / (iterations - 1))
              : null;
          if (perIterationMs !== null) steady[name].push(perIterationMs);
          console.log(
            JSON.stringify({
              bench: 'traffic-link',
              technique: name,
              repeat,
              rate: values.rate,
              data: values.data,
              examples: Number(values.examples),
              shards: Number(values.shards),
              iterations: Number(values.iterations),
              wallMs: finished.wallMs,
              perIterationMs,
              tasks: finished.tasks,
              bytes: finished.bytes,
              finalLogLoss: last?.logLoss ?? null,
              lastIteration: (last as { iteration?: number } | undefined)?.iteration ?? null,
              medians: finished.medians,
              routes: worker.line('worker')?.routes ?? null,
            }),
          );
        } finally {
          worker.kill();
          await stopCluster(child);
        }
      }
  } finally {
    link.close();
  }
  const medianWallMs = Object.fromEntries(techniques.map((t) => [t, median(walls[t])]));
  const medianPerIterationMs = Object.fromEntries(techniques.map((t) => [t, median(steady[t])]));
  const ratio = (m: Record<string, number>) =>
    m.none ? Object.fromEntries(techniques.map((t) => [t, +(m.none / m[t]).toFixed(2)])) : null;
  console.log(
    JSON.stringify({
      bench: 'traffic-link-summary',
      rate: values.rate,
      medianWallMs,
      medianPerIterationMs,
      speedupWall: ratio(medianWallMs),
      speedupPerIteration: ratio(medianPerIterationMs),
      goal: 4,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
