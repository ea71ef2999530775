/**
 * bench:browser (gradient part) — examples/s of the logistic-regression gradient
 * (apps/logreg/gradient.ts, timed by client/gradient-timing.ts) on one real shard of the spam
 * job, in a Chromium tab (a Web Worker of the bench lab page, bench/lab/, on the backend initTf picks, as the
 * worker page computes) vs this plain Node process with tfjs (wasm, and cpu for reference).
 * Both sides use the same bytes: the tab downloads `/api/jobs/1/shards/<shard>` from the gateway,
 * Node fetches the same URL. The sides take turns for `--rounds` rounds (never at the same time:
 * 2 cores); each round is a median over `--reps` calls, the line reports the median over rounds
 * (and the mean per call from wall time, since the tab's timer has 100 µs steps: bench/lab/gradient.ts).
 *
 *   npm run bench:browser            (transport part, then this)
 *   node --import tsx bench/browser/gradient.ts [--reps 30] [--rounds 3] [--shard 0]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Harness } from '../../e2e/harness.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { type GradientBenchResult, type LabGradientTiming, timeGradient } from '../lab/gradient.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    shard: { type: 'string', default: '0' },
    'node-backends': { type: 'string', default: 'wasm,cpu' },
  },
});
const reps = Number(values.reps);
const warmup = Number(values.warmup);
const rounds = Number(values.rounds);
const shardIndex = Number(values.shard);
const nodeBackends = values['node-backends'].split(',');

type Lab = { gradient(o: object): Promise<GradientBenchResult> };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const h = await Harness.start({ nodes: 1, lab: 'bench/lab/main.ts' });
try {
  const res = await fetch(`${h.gateway}/api/jobs/1/shards/${shardIndex}`);
  if (!res.ok) throw new Error(`shard download: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const shard = decodeShard(bytes);
  const page = await h.openPage();

  const tab: GradientBenchResult[] = [];
  const node = new Map<string, LabGradientTiming[]>(nodeBackends.map((b) => [b, []]));
  for (let r = 0; r < rounds; r++) {
    tab.push(
      await page.evaluate((o) => (window as unknown as { tabshardLab: Lab }).tabshardLab.gradient(o), {
        job: 1,
        shard: shardIndex,
        reps,
        warmup,
      }),
    );
    for (const b of nodeBackends) {
      if (!(await tf.setBackend(b))) throw new Error(`tfjs backend ${b} did not initialise in Node`);
      node.get(b)!.push(await timeGradient(tf, shard, { reps, warmup }));
    }
  }

  const line = (where: 'tab' | 'node', backend: string, ts: LabGradientTiming[], extra: object = {}) => {
    const ms = median(ts.map((t) => t.msMedian));
    const mean = median(ts.map((t) => t.msMean));
    const out = {
      bench: 'browser-gradient',
      where,
      backend,
      examples_per_s: Math.round(ts[0].examples / (ms / 1000)),
      ms_median: +ms.toFixed(3),
      examples_per_s_mean: Math.round(ts[0].examples / (mean / 1000)),
      ms_mean: +mean.toFixed(3),
      examples: ts[0].examples,
      non_zeros: ts[0].nonZeros,
      keys: ts[0].keys,
      shard: shardIndex,
      reps,
      rounds_ms_median: ts.map((t) => +t.msMedian.toFixed(3)),
      ...extra,
    };
    console.log(JSON.stringify(out));
    return out;
  };
  const t = line(
    'tab',
    tab[0].backend,
    tab.map((x) => x.timing),
    {
      thread: 'web-worker',
      init_ms: Math.round(tab[0].initMs),
      probes: tab[0].probes,
    },
  );
  const n = new Map(nodeBackends.map((b) => [b, line('node', b, node.get(b)!)]));
  const ratio = (a: number, b: number) => +(a / b).toFixed(3);
  console.log(
    JSON.stringify({
      bench: 'browser-gradient-ratio',
      tab_backend: t.backend,
      ...Object.fromEntries(
        [...n].flatMap(([b, x]) => [
          [`tab_over_node_${b}`, ratio(t.examples_per_s, x.examples_per_s)],
          [`tab_over_node_${b}_mean`, ratio(t.examples_per_s_mean, x.examples_per_s_mean)],
        ]),
      ),
    }),
  );
} finally {
  await h.stop();
}
