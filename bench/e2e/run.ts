/**
 * bench:e2e — the demo job end to end against the single-process baseline, in one run: per
 * repeat (a) `bench/baseline-logreg.ts --data spam` as a child process (its per-iteration JSON
 * lines), then (b) for each worker count (and `--prefetch` setting) a fresh embedded cluster
 * (server/cluster.ts: 3 server-node processes, the manager, the gateway and the job's scheduler in
 * this process) running the job `npm start` runs (spam logistic regression, 16 shards × 12
 * iterations, BSP), trained by that many `tabshard worker` processes over WebRTC.
 *
 * Per run: the wall time from the first lease to the job's `done` event (the driver's, after the
 * last held-out evaluation), the final held-out log-loss and accuracy, the baseline's time to the
 * same log-loss (its first iteration at or below it) and its full time, the ratio, the exactly-once
 * audit, and the per-task times the workers report (`--report-tasks`, client/task-times.ts),
 * pooled over workers. JSON lines on stdout: `e2e-baseline` and `e2e` per run, `e2e-summary`
 * with medians over the repeats and the lead's targets (ratio ≤ 1.3 at 1 worker; 2 workers not
 * slower than 1). Progress goes to stderr.
 *
 *   npm run bench:e2e [-- --repeats 3 --workers 1,2 --prefetch 1 --nodes 3 --transport auto --timeout-s 600]
 *
 * Every process it starts (baseline, workers, server nodes) is stopped when a run ends, fails, or
 * this process is interrupted (bench/run-children.ts).
 */
import { parseArgs } from 'node:util';
import type { TaskTimes } from '../../client/task-times.ts';
import { startEmbeddedCluster } from '../../server/cluster.ts';
import { BIN, child, DEMO_JOB, deadline, runningCluster } from '../run-children.ts';
import { type BaselinePoint, baselineTo, pooledMedians, type RunRow, ratio, summarize } from './report.ts';

async function runBaseline(timeoutMs: number) {
  const points: BaselinePoint[] = [];
  let summary: Record<string, unknown> = {};
  const b = child(['--import', 'tsx', 'bench/baseline-logreg.ts', '--data', 'spam'], (ev) => {
    if (ev.bench === 'baseline-logreg') points.push(ev as unknown as BaselinePoint);
    if (ev.bench === 'baseline-logreg-summary') summary = ev;
  });
  try {
    await deadline(b.exited, timeoutMs, 'baseline');
  } finally {
    if (b.child.exitCode === null) b.child.kill('SIGKILL');
  }
  return { points, summary };
}

interface WorkerOut {
  tasks: TaskTimes[];
  finished?: Record<string, unknown>;
}

/** One distributed run on a fresh cluster: `workers` worker processes with `prefetch`. */
async function runJob(o: { workers: number; prefetch: number; nodes: number; transport: string; timeoutMs: number }) {
  const c = await startEmbeddedCluster({ nodes: o.nodes, jobs: [DEMO_JOB] });
  runningCluster(c);
  const spawned: ReturnType<typeof child>[] = [];
  try {
    const job = c.jobs[0];
    let firstLease: number | undefined;
    let doneAt: number | undefined;
    const done = new Promise<void>((resolve) => {
      job.listen({
        log: (ev) => {
          if (firstLease === undefined && (ev as { ev?: string }).ev === 'lease') firstLease = performance.now();
        },
        done: () => {
          doneAt = performance.now();
          resolve();
        },
      });
    });
    const outs: WorkerOut[] = [];
    for (let i = 0; i < o.workers; i++) {
      const out: WorkerOut = { tasks: [] };
      outs.push(out);
      const args = [BIN, 'worker', '--url', c.gateway, '--job', String(job.app.job), '--report-tasks'];
      args.push('--prefetch', String(o.prefetch), '--transport', o.transport);
      spawned.push(
        child(args, (ev) => {
          if (ev.event === 'task') out.tasks.push(ev as unknown as TaskTimes);
          if (ev.event === 'finished') out.finished = ev;
        }),
      );
    }
    await deadline(Promise.all([done, ...spawned.map((s) => s.exited)]), o.timeoutMs, 'distributed run');
    const last = job.latest!;
    const audit = await job.auditTasks();
    return {
      wallMs: Math.round(doneAt! - firstLease!),
      final: { iteration: last.iteration + 1, logLoss: +last.logLoss.toFixed(4), accuracy: +last.accuracy.toFixed(4) },
      audit,
      outs,
    };
  } finally {
    for (const s of spawned) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await c.stop();
    runningCluster(null);
  }
}

const list = (s: string) => s.split(',').map(Number);
const pick = (f: Record<string, unknown> | undefined, keys: string[]) =>
  Object.fromEntries(keys.map((k) => [k, f?.[k] ?? null]));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '1' },
      workers: { type: 'string', default: '1,2' },
      prefetch: { type: 'string', default: '1' },
      nodes: { type: 'string', default: '3' },
      transport: { type: 'string', default: 'auto' },
      'timeout-s': { type: 'string', default: '600' },
    },
  });
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const rows: RunRow[] = [];
  for (let repeat = 0; repeat < Number(values.repeats); repeat++) {
    console.error(`e2e: repeat ${repeat}: baseline`);
    const base = await runBaseline(timeoutMs);
    console.log(
      JSON.stringify({
        bench: 'e2e-baseline',
        repeat,
        ms: base.points.at(-1)?.ms ?? null,
        final: pick(base.summary.final as Record<string, unknown>, ['logLoss', 'accuracy']),
        points: base.points.map((p) => [p.iteration, p.ms, p.logLoss]),
      }),
    );
    // Worker counts and prefetch settings go round within a repeat, so a noisy stretch spreads over all.
    for (const workers of list(values.workers))
      for (const prefetch of list(values.prefetch)) {
        console.error(`e2e: repeat ${repeat}: ${workers} worker(s), prefetch ${prefetch}`);
        const r = await runJob({
          workers,
          prefetch,
          nodes: Number(values.nodes),
          transport: values.transport,
          timeoutMs,
        });
        const b = baselineTo(base.points, r.final.logLoss);
        const q = ratio(r.wallMs, b);
        const medians = pooledMedians(r.outs.map((w) => w.tasks));
        console.log(
          JSON.stringify({
            bench: 'e2e',
            repeat,
            workers,
            prefetch,
            wallMs: r.wallMs,
            final: r.final,
            baseline: {
              msToSame: b.msToSame,
              iterationToSame: b.iterationToSame,
              ms: b.ms,
              finalLogLoss: b.finalLogLoss,
            },
            ratio: q.ratio,
            baselineReached: q.reached,
            audit: r.audit,
            medians,
            perWorker: r.outs.map((w) => ({
              ...pick(w.finished, ['worker', 'tasks', 'computeMs', 'waitMs', 'wallMs', 'framesSent', 'abandoned']),
              medians: w.finished?.medians ?? null,
            })),
          }),
        );
        rows.push({
          repeat,
          workers,
          prefetch,
          wallMs: r.wallMs,
          ratio: q.ratio,
          finalLogLoss: r.final.logLoss,
          medians,
        });
      }
  }
  console.log(JSON.stringify({ bench: 'e2e-summary', repeats: Number(values.repeats), ...summarize(rows) }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
