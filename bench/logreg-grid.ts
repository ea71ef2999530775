/**
 * The grid behind the logistic-regression job's FTRL parameters (apps/logreg/job.ts): every
 * (alpha, beta, l1) × push lag trained in process with trainLogreg and the plain-JS reference
 * gradient (float64; the same maths as the tfjs kernel, no tfjs start-up), one JSON line per run
 * with the held-out log-loss per iteration and the first iteration that reached the job's target.
 * lag 3 imitates 4 parallel workers (4 tasks pull before their pushes land).
 *
 *   npm run bench:logreg-grid -- --data ctr [--examples 2000000 --alphas 0.05,0.1,0.2
 *     --betas 1 --l1s 0.5,1,2 --lags 0,3 --iterations 10]
 */
import { parseArgs } from 'node:util';
import { logregGradientRef } from '../apps/logreg/eval.ts';
import { type LogregData, prepareLogregJob } from '../apps/logreg/job.ts';
import { trainLogreg } from '../apps/logreg/train.ts';
import { decodeShard } from '../shared/apps/shard.ts';
import { firstReached } from './logreg-target.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'ctr' },
    examples: { type: 'string' },
    alphas: { type: 'string', default: '0.05,0.1,0.2' },
    betas: { type: 'string', default: '1' },
    l1s: { type: 'string', default: '0.5,1,2' },
    lags: { type: 'string', default: '0,3' },
    iterations: { type: 'string' },
  },
});
const list = (s: string) => s.split(',').map(Number);
const job = await prepareLogregJob({
  job: 1,
  data: values.data as LogregData,
  examples: values.examples === undefined ? undefined : Number(values.examples),
});
const shards = job.shards.map(decodeShard);
const iterations = values.iterations ? Number(values.iterations) : job.iterations;
console.log(JSON.stringify({ bench: 'logreg-grid-data', dataset: job.meta.dataset, target: job.target }));
for (const alpha of list(values.alphas))
  for (const beta of list(values.betas))
    for (const l1 of list(values.l1s))
      for (const lag of list(values.lags)) {
        const t0 = performance.now();
        const table = { ...job.tables[0], params: { alpha, beta, l1, l2: 0 } };
        const r = await trainLogreg({
          table,
          shards,
          heldout: job.heldout,
          iterations,
          lag,
          gradient: async (s, w) => {
            const g = logregGradientRef(s, w);
            return { grad: Float32Array.from(g.grad), loss: g.loss, examples: s.labels.length };
          },
        });
        const last = r[r.length - 1];
        console.log(
          JSON.stringify({
            bench: 'logreg-grid',
            data: job.meta.dataset.name,
            alpha,
            beta,
            l1,
            lag,
            logLoss: r.map((x) => +x.logLoss.toFixed(4)),
            accuracy: +last.accuracy.toFixed(4),
            nonZero: last.nonZero,
            firstReached: firstReached(r, job.target),
            ms: Math.round(performance.now() - t0),
          }),
        );
      }
