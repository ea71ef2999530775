/**
 * bench:apps — every registered application, distributed against single-process, in one run
 * (the applications issue's benchmark). Per app and repeat:
 *   - `local`: the job run in this process through its contract (bench/apps-local.ts: in-process
 *     tables with the real updaters, tasks in turn, the job's own evaluation), tfjs on wasm;
 *   - `distributed`: a fresh embedded cluster (`tabshard start --app NAME`, 2 nodes, BSP) and W
 *     `tabshard worker` processes, timed from the first lease (the job's own metrics).
 * For the Count-Min sketch (cms), the distributed run is repeated with 1, 2 and 4 workers and
 * inserts/s (tokens counted per second from the first lease to the pass's end) are reported with
 * the sketch's error: the share of items within ε·N (its promise: ≥ 1 − δ) and the mean
 * overestimate in units of ε·N.
 *
 * JSON lines: `apps` per run, `apps-summary` per app (medians over repeats).
 *
 *   npm run bench:apps [-- --apps logreg,textnn,cms --workers 2 --cms-workers 1,2,4 --shards 8 --repeats 1]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { jobApp } from '../apps/jobs.ts';
import { bindApp } from '../apps/workers.ts';
import { initTf } from '../client/tf-backend.ts';
import { runLocal } from './apps-local.ts';
import { median, parseMode, runMode } from './consistency/run.ts';

interface Quality {
  iteration: number;
  ms: number;
  accuracy: number;
  logLoss: number;
}

const { values } = parseArgs({
  options: {
    apps: { type: 'string', default: 'logreg,textnn,cms' },
    workers: { type: 'string', default: '2' },
    'cms-workers': { type: 'string', default: '1,2,4' },
    shards: { type: 'string', default: '8' },
    nodes: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '1' },
  },
});
const shards = Number(values.shards);
await initTf(tf, { prefer: ['wasm'], pick: 'first' });

/** The first evaluation that meets the target, if any. */
const reachedAt = (ms: Quality[], t: { accuracy: number; logLoss?: number }) =>
  ms.find((m) => m.accuracy >= t.accuracy && (t.logLoss === undefined || m.logLoss <= t.logLoss));

for (const name of values.apps.split(',')) {
  const job = await jobApp(name).prepare({ job: 1, shards });
  const math = bindApp({ app: job.app, tables: job.tables.map((t) => t.name), model: job.model });
  const inserts = (job.meta as { inserts?: number }).inserts;
  const runs: Array<{
    mode: string;
    workers: number;
    timeToTargetMs: number | null;
    last: Quality;
    perSecond?: number;
  }> = [];
  const report = (mode: string, workers: number, metrics: Quality[], repeat: number) => {
    const last = metrics.at(-1)!;
    const reached = reachedAt(metrics, job.target);
    const perSecond = inserts === undefined ? undefined : Math.round((inserts * metrics.length) / (last.ms / 1000));
    runs.push({ mode, workers, timeToTargetMs: reached ? Math.round(reached.ms) : null, last, perSecond });
    console.log(
      JSON.stringify({
        bench: 'apps',
        app: name,
        mode,
        workers,
        repeat,
        shards,
        iterations: metrics.length,
        target: job.target,
        timeToTargetMs: reached ? Math.round(reached.ms) : null,
        totalMs: Math.round(last.ms),
        finalAccuracy: +last.accuracy.toFixed(4),
        finalLogLoss: +last.logLoss.toFixed(4),
        ...(perSecond === undefined ? {} : { insertsPerSecond: perSecond }),
      }),
    );
  };
  const workerCounts = name === 'cms' ? values['cms-workers'].split(',').map(Number) : [Number(values.workers)];
  for (let repeat = 0; repeat < Number(values.repeats); repeat++) {
    report('local', 1, await runLocal(tf, job, math, job.iterations), repeat);
    for (const workers of workerCounts) {
      const r = await runMode(parseMode('bsp'), {
        workers,
        straggler: 1,
        shards,
        iterations: job.iterations,
        nodes: Number(values.nodes),
        transport: 'auto',
        target: Number.POSITIVE_INFINITY,
        data: ['--app', name],
        leaseMs: 20_000,
        tabs: 0,
        repeats: 1,
      });
      report('distributed', workers, r.metrics, repeat);
    }
  }
  const summary = (mode: string, workers: number) => {
    const rs = runs.filter((r) => r.mode === mode && r.workers === workers);
    const med = (f: (r: (typeof rs)[number]) => number) => median(rs.map(f));
    return {
      mode,
      workers,
      timeToTargetMs: rs.every((r) => r.timeToTargetMs !== null) ? med((r) => r.timeToTargetMs!) : null,
      totalMs: Math.round(med((r) => r.last.ms)),
      finalAccuracy: +med((r) => r.last.accuracy).toFixed(4),
      finalLogLoss: +med((r) => r.last.logLoss).toFixed(4),
      ...(inserts === undefined ? {} : { insertsPerSecond: med((r) => r.perSecond!) }),
    };
  };
  console.log(
    JSON.stringify({
      bench: 'apps-summary',
      app: name,
      repeats: Number(values.repeats),
      target: job.target,
      ...(name === 'cms' ? { sketch: (job.meta as { sketch: unknown }).sketch, inserts } : {}),
      runs: [summary('local', 1), ...workerCounts.map((w) => summary('distributed', w))],
    }),
  );
}
process.exit(0);
