/**
 * Benchmark of the worker's compute step: examples/s of the tfjs logistic-regression gradient
 * (apps/logreg/gradient.ts) in a plain Node process, per backend, on the job's real shards (default
 * data: 16 shards of ~300 e-mails, ~60k non-zeros, ~13k keys each). One JSON line per (backend,
 * shard): median over --reps calls after warm-up. The same timing loop (client/gradient-timing.ts)
 * runs in the browser bench.
 *
 *   npm run bench:gradient [-- --reps 30 --shards 4 --backends wasm,cpu]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { measureGradient } from '../client/gradient-timing.ts';
import { probeTfBackends } from '../client/tf-backend.ts';
import { prepareSpamData } from '../server/data/spam-data.ts';
import { decodeShard } from '../shared/apps/shard.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '30' },
    shards: { type: 'string', default: '4' },
    backends: { type: 'string', default: 'wasm,cpu' },
  },
});
const backends = values.backends.split(',');
const reps = Number(values.reps);

const data = await prepareSpamData();
const shards = data.shards.slice(0, Number(values.shards)).map(decodeShard);
const probes = await probeTfBackends(tf, { prefer: backends });
console.log(JSON.stringify({ bench: 'gradient-probe', probes }));
for (const backend of backends) {
  if (!(await tf.setBackend(backend))) continue;
  const perShard = [];
  for (const s of shards) {
    const t = await measureGradient(tf, s, { reps, warmup: 3 });
    perShard.push(t.examplesPerSec);
    console.log(
      JSON.stringify({
        bench: 'gradient',
        backend,
        shard: s.index,
        examples: t.examples,
        nonZeros: t.nonZeros,
        keys: t.keys,
        reps,
        msMedian: +t.msMedian.toFixed(3),
        msMin: +t.msMin.toFixed(3),
        examplesPerSec: Math.round(t.examplesPerSec),
      }),
    );
  }
  perShard.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bench: 'gradient-summary',
      backend,
      shards: shards.length,
      examplesPerSecMedian: Math.round(perShard[perShard.length >> 1]),
    }),
  );
}
