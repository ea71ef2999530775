/**
 * The text-classifier job run in one Node process (apps/textnn/train.ts) with the tfjs
 * gradient and the job's updaters: one JSON line per (lag, iteration) with cumulative wall ms and
 * held-out log-loss / accuracy, a summary per lag with the time to the target, and first the
 * gradient throughput (examples/s, median of timed calls on shard 0) on each backend.
 * lag 0 = tasks one after another; 15 = BSP with 16 parallel workers; 31 = bounded delay τ = 1.
 *
 *   npm run bench:textnn [-- --lags 0,15 --backend wasm --throughput wasm,cpu]
 *   overrides for grids: --dim 16 --hidden 16 --iterations 12
 *     --emb '{"updater":"adagrad","params":{"lr":0.1}}' --dense '{...}'
 *     --emb-init '{"kind":"uniform","scale":0.1,"seed":1}' --dense-init '{...}'
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { textnnGradient } from '../apps/textnn/gradient.ts';
import { prepareTextnnJob } from '../apps/textnn/job.ts';
import type { TextnnConfig } from '../apps/textnn/model.ts';
import { trainTextnn } from '../apps/textnn/train.ts';
import { initTf } from '../client/tf-backend.ts';
import { decodeShard } from '../shared/apps/shard.ts';

const { values } = parseArgs({
  options: {
    lags: { type: 'string', default: '0,15' },
    backend: { type: 'string', default: 'wasm' },
    throughput: { type: 'string', default: 'wasm,cpu' },
    seed: { type: 'string', default: '1' },
    iterations: { type: 'string' },
    dim: { type: 'string' },
    hidden: { type: 'string' },
    emb: { type: 'string' },
    dense: { type: 'string' },
    'emb-init': { type: 'string' },
    'dense-init': { type: 'string' },
    label: { type: 'string', default: 'spam-16x2^20' },
  },
});
const model: Partial<TextnnConfig> = {};
if (values.dim) model.dim = Number(values.dim);
if (values.hidden) model.hidden = Number(values.hidden);
const job = await prepareTextnnJob({ job: 1, seed: Number(values.seed), model });
const [embT, denseT] = job.tables;
if (values.emb) Object.assign(embT, JSON.parse(values.emb));
if (values.dense) Object.assign(denseT, JSON.parse(values.dense));
if (values['emb-init']) embT.init = JSON.parse(values['emb-init']);
if (values['dense-init']) denseT.init = JSON.parse(values['dense-init']);
const shards = job.shards.map(decodeShard);
const iterations = values.iterations ? Number(values.iterations) : job.iterations;
const reached = (r: { accuracy: number; logLoss: number }) =>
  r.accuracy >= job.target.accuracy && r.logLoss <= (job.target.logLoss ?? Infinity);

await initTf(tf, { prefer: [values.backend], pick: 'first' });
for (const backend of values.throughput.split(',').filter(Boolean)) {
  if (!(await tf.setBackend(backend))) continue;
  const s = shards[0];
  const emb = new Float32Array(s.keys.length * job.model.dim).map((_, i) => ((i * 2654435761) % 1000) / 1e4 - 0.05);
  const dense = new Float32Array(denseT.keySpace).map((_, i) => ((i * 40503) % 1000) / 2e3 - 0.25);
  for (let i = 0; i < 3; i++) await textnnGradient(tf, s, emb, dense, job.model);
  const ms: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    await textnnGradient(tf, s, emb, dense, job.model);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const med = ms[ms.length >> 1];
  console.log(
    JSON.stringify({
      bench: 'textnn-gradient',
      backend,
      model: job.model,
      examples: s.labels.length,
      nonZeros: s.col.length,
      keys: s.keys.length,
      msMedian: +med.toFixed(2),
      examplesPerSec: Math.round(s.labels.length / (med / 1000)),
    }),
  );
}
await tf.setBackend(values.backend);

for (const lag of values.lags.split(',').map(Number)) {
  const reports = await trainTextnn({
    tables: job.tables,
    model: job.model,
    shards,
    heldout: job.heldout,
    iterations,
    lag,
    gradient: (s, e, d) => textnnGradient(tf, s, e, d, job.model),
    onIteration: (r) =>
      console.log(
        JSON.stringify({
          bench: 'textnn-train',
          data: values.label,
          lag,
          iteration: r.iteration + 1,
          ms: Math.round(r.ms),
          logLoss: +r.logLoss.toFixed(4),
          accuracy: +r.accuracy.toFixed(4),
          trainLoss: +r.trainLoss.toFixed(4),
          reached: reached(r),
        }),
      ),
  });
  const first = reports.find(reached);
  const best = reports.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  console.log(
    JSON.stringify({
      bench: 'textnn-train-summary',
      data: values.label,
      lag,
      backend: tf.getBackend(),
      model: job.model,
      tables: job.tables.map((t) => ({ name: t.name, updater: t.updater, params: t.params, init: t.init })),
      target: job.target,
      firstReached: first ? first.iteration + 1 : null,
      msToTarget: first ? Math.round(first.ms) : null,
      best: { iteration: best.iteration + 1, accuracy: +best.accuracy.toFixed(4), logLoss: +best.logLoss.toFixed(4) },
      ms: Math.round(reports[reports.length - 1].ms),
    }),
  );
}
