/**
 * The logistic-regression job run in process (apps/logreg/train.ts) with the tfjs gradient
 * and the job's FTRL updater, at several push lags: one JSON line per (lag, iteration) with
 * held-out accuracy, log-loss and non-zero weights. lag 0 = tasks in turn; 15 = BSP with 16
 * parallel workers (every task of an iteration pulls before any push); 31 = bounded delay τ = 1.
 *
 *   npm run bench:logreg [-- --lags 0,15,31 --backend wasm]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { logregGradient } from '../apps/logreg/gradient.ts';
import { prepareLogregJob } from '../apps/logreg/job.ts';
import { trainLogreg } from '../apps/logreg/train.ts';
import { initTf } from '../client/tf-backend.ts';
import { decodeShard } from '../shared/apps/shard.ts';

const { values } = parseArgs({
  options: {
    lags: { type: 'string', default: '0,15,31' },
    backend: { type: 'string', default: 'wasm' },
    seed: { type: 'string', default: '1' },
    iterations: { type: 'string' },
  },
});
await initTf(tf, { prefer: [values.backend], pick: 'first' });
const job = await prepareLogregJob({ job: 1, seed: Number(values.seed) });
const shards = job.shards.map(decodeShard);
const iterations = values.iterations ? Number(values.iterations) : job.iterations;
const [table] = job.tables;
for (const lag of values.lags.split(',').map(Number)) {
  const t0 = performance.now();
  const reports = await trainLogreg({
    table,
    shards,
    heldout: job.heldout,
    iterations,
    lag,
    gradient: (s, w) => logregGradient(tf, s, w),
  });
  for (const r of reports)
    console.log(
      JSON.stringify({
        bench: 'logreg-train',
        lag,
        iteration: r.iteration + 1,
        accuracy: +r.accuracy.toFixed(4),
        logLoss: +r.logLoss.toFixed(4),
        trainLoss: +r.trainLoss.toFixed(4),
        nonZero: r.nonZero,
        reached: r.accuracy >= job.target.accuracy && r.logLoss <= (job.target.logLoss ?? Infinity),
      }),
    );
  console.log(
    JSON.stringify({
      bench: 'logreg-train-summary',
      lag,
      backend: tf.getBackend(),
      updater: table.updater,
      params: table.params,
      target: job.target,
      firstReached:
        reports.findIndex((r) => r.accuracy >= job.target.accuracy && r.logLoss <= (job.target.logLoss ?? Infinity)) +
          1 || null,
      ms: Math.round(performance.now() - t0),
    }),
  );
}
