/**
 * The single-process baseline of the logistic-regression job: the same data, table, updater and
 * iterations as the distributed job (apps/logreg/job.ts), in ONE Node process with the tfjs
 * gradient (apps/logreg/gradient.ts, wasm backend), tasks run one after another (trainLogreg, lag 0).
 * What a distributed run has to beat. One JSON line per iteration:
 *   {bench:'baseline-logreg', data, iteration, ms, logLoss, accuracy, nonZero}
 * where ms is wall time since training started (cumulative, held-out evaluations included; data
 * preparation is reported apart as prepareMs), and one summary line per data set with the time to
 * the job's target and the final quality.
 *
 *   npm run bench:baseline [-- --data spam,ctr --examples 2000000 --iterations N --backend wasm]
 * --examples sets the CTR data size (default: the job's, 2,000,000: training takes ~30 s here,
 * generating the data the first time ~12 s more; --examples 500000 for a quick run).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { logregGradient } from '../apps/logreg/gradient.ts';
import { type LogregData, prepareLogregJob } from '../apps/logreg/job.ts';
import { trainLogreg } from '../apps/logreg/train.ts';
import { initTf } from '../client/tf-backend.ts';
import { decodeShard } from '../shared/apps/shard.ts';
import { firstReached } from './logreg-target.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'spam,ctr' },
    examples: { type: 'string' },
    iterations: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    seed: { type: 'string', default: '1' },
  },
});
await initTf(tf, { prefer: [values.backend], pick: 'first' });

for (const data of values.data.split(',') as LogregData[]) {
  const job = await prepareLogregJob({
    job: 1,
    data,
    seed: Number(values.seed),
    examples: data === 'ctr' && values.examples !== undefined ? Number(values.examples) : undefined,
  });
  const shards = job.shards.map(decodeShard);
  const iterations = values.iterations ? Number(values.iterations) : job.iterations;
  // trainLogreg reports at the end; an iteration's end is when the next one's first task starts
  // (after the held-out evaluation), so the gradient calls carry the clock.
  const ends: number[] = [];
  let calls = 0;
  const t0 = performance.now();
  const reports = await trainLogreg({
    table: job.tables[0],
    shards,
    heldout: job.heldout,
    iterations,
    lag: 0,
    gradient: (s, w) => {
      if (calls > 0 && calls % shards.length === 0) ends.push(performance.now() - t0);
      calls++;
      return logregGradient(tf, s, w);
    },
  });
  ends.push(performance.now() - t0);
  const label = job.meta.dataset.label;
  for (const r of reports)
    console.log(
      JSON.stringify({
        bench: 'baseline-logreg',
        data: label,
        iteration: r.iteration + 1,
        ms: Math.round(ends[r.iteration]),
        logLoss: +r.logLoss.toFixed(4),
        accuracy: +r.accuracy.toFixed(4),
        nonZero: r.nonZero,
      }),
    );
  const reached = firstReached(reports, job.target);
  const last = reports[reports.length - 1];
  console.log(
    JSON.stringify({
      bench: 'baseline-logreg-summary',
      data: label,
      config: job.meta.data,
      backend: tf.getBackend(),
      examples: job.meta.examples,
      train: job.meta.train,
      nonZeros: job.meta.nonZeros,
      features: job.meta.features,
      updater: job.tables[0].updater,
      params: job.tables[0].params,
      iterations,
      target: job.target,
      ...(job.meta.dataset.name === 'ctr' ? { bayesLogLoss: +job.meta.dataset.planted.bayesLogLoss.toFixed(4) } : {}),
      reachedAtIteration: reached,
      msToTarget: reached === null ? null : Math.round(ends[reached - 1]),
      final: { logLoss: +last.logLoss.toFixed(4), accuracy: +last.accuracy.toFixed(4), nonZero: last.nonZero },
      ms: Math.round(ends[ends.length - 1]),
      prepareMs: Math.round(job.meta.prepareMs),
      cached: job.meta.cached,
    }),
  );
}
