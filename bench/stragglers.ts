/**
 * bench:stragglers — stragglers and their remedies (docs/architecture.md §8): the demo job trained
 * by N workers (real `tabshard worker` processes over WebRTC on a fresh embedded cluster per
 * run), worker 0 an F× straggler (`--slowdown F`) and worker 1 stalling (`--stall MS:EVERY`:
 * a rest of MS ms after every EVERY-th task), the others fast. Modes are the consistency study's
 * (bench/consistency/run.ts: `bsp`, `tauK`, `asp`, suffixes `-backup`, `-eager`, `-slr`).
 *
 * Per run: time from the first lease to the target held-out log-loss, final log-loss, and the
 * compute share of the fast workers (compute / (compute + wait)). JSON lines on stdout:
 * `stragglers` per run, `stragglers-summary` with the medians per mode and the ratios the issue
 * sets goals for: plain BSP / the best mode, and the best τ alone / the best mode.
 *
 *   npm run bench:stragglers [-- --workers 4 --straggler 4 --stall 3000:4 --shards 8 --iterations 12
 *       --modes bsp,tau2,tau4,tau8,bsp-backup,tau2-backup --target 0.12 --repeats 3]
 */
import { parseArgs } from 'node:util';
import { firstReached, median, parseMode, runMode, type StudyOptions } from './consistency/run.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '4' },
      straggler: { type: 'string', default: '4' },
      stall: { type: 'string', default: '3000:4' },
      shards: { type: 'string', default: '8' },
      iterations: { type: 'string', default: '12' },
      nodes: { type: 'string', default: '2' },
      modes: { type: 'string', default: 'bsp,tau2,tau4,tau8,bsp-backup,tau2-backup' },
      target: { type: 'string', default: '0.12' },
      repeats: { type: 'string', default: '3' },
    },
  });
  const o: StudyOptions = {
    workers: Number(values.workers),
    straggler: Number(values.straggler),
    stall: values.stall,
    shards: Number(values.shards),
    iterations: Number(values.iterations),
    nodes: Number(values.nodes),
    transport: 'auto',
    target: Number(values.target),
    data: ['--data', 'spam', '--app', 'logreg'],
    leaseMs: 20_000,
    tabs: 0,
    repeats: Number(values.repeats),
  };
  const modes = values.modes.split(',').map(parseMode);
  const runs = new Map<string, Array<{ ms: number; final: number; fastShare: number }>>(modes.map((m) => [m.name, []]));
  // Repeats go round the modes, so a noisy stretch of the shared machine spreads over all of them.
  for (let repeat = 0; repeat < o.repeats; repeat++)
    for (const mode of modes) {
      const r = await runMode(mode, o);
      const reached = firstReached(r.metrics, o.target);
      const last = r.metrics.at(-1);
      const fast = r.results.filter((_, i) => i >= 2);
      const share = (w: { computeMs: number; waitMs: number }) => w.computeMs / Math.max(1, w.computeMs + w.waitMs);
      const fastShare = fast.length ? median(fast.map(share)) : Number.NaN;
      console.log(
        JSON.stringify({
          bench: 'stragglers',
          mode: mode.name,
          repeat,
          workers: o.workers,
          straggler: o.straggler,
          stall: o.stall,
          shards: o.shards,
          target: o.target,
          timeToTargetMs: reached?.ms ?? null,
          totalMs: last?.ms ?? null,
          finalLogLoss: last?.logLoss ?? null,
          fastComputeShare: +fastShare.toFixed(3),
          backups: r.backups ?? null,
          perWorker: r.results.map((w) => ({ tasks: w.tasks, computeMs: w.computeMs, waitMs: w.waitMs })),
        }),
      );
      runs.get(mode.name)!.push({ ms: reached?.ms ?? Infinity, final: last?.logLoss ?? Infinity, fastShare });
    }
  const medians = Object.fromEntries(
    modes.map((m) => {
      const rs = runs.get(m.name)!;
      return [
        m.name,
        {
          timeToTargetMs: median(rs.map((r) => r.ms)),
          finalLogLoss: median(rs.map((r) => r.final)),
          fastComputeShare: median(rs.map((r) => r.fastShare)),
        },
      ];
    }),
  );
  const time = (name: string) => medians[name]?.timeToTargetMs ?? Infinity;
  const names = modes.map((m) => m.name);
  const best = [...names].sort((a, b) => time(a) - time(b))[0];
  const taus = modes.filter((m) => m.tau !== 0 && !m.backups && !m.eager && !m.stalenessLr).map((m) => m.name);
  const bestTau = [...taus].sort((a, b) => time(a) - time(b))[0];
  const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) ? +(a / b).toFixed(2) : null);
  console.log(
    JSON.stringify({
      bench: 'stragglers-summary',
      repeats: o.repeats,
      medians,
      best,
      bestTau: bestTau ?? null,
      bspOverBest: ratio(time('bsp'), time(best)),
      bestTauOverBest: bestTau ? ratio(time(bestTau), time(best)) : null,
      goals: { bspOverBest: 2, bestTauOverBest: 1.25, fastComputeShare: 0.8 },
    }),
  );
}

await main();
