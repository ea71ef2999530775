/**
 * bench:cnn-step — what one CNN task's gradient (apps/cnn/gradient.ts: 100 digits, forward and
 * tfjs autodiff) costs in a Chromium tab's Web Worker (wasm, as the worker page computes) next to
 * this Node process (wasm, and cpu for reference: 3 calls), and what the whole task costs the tab.
 * The tab trains `tabshard start --app cnn` alone for `--tasks` tasks, then its own per-task
 * medians (`window.tabshard.taskMedians`) are read; the cluster is stopped before Node times the
 * same shards (never both at once: 2 cores). JSON lines: `cnn-step` per side, then `cnn-step-ratio`.
 *
 *   node --import tsx bench/cnn-step.ts [--tasks 40] [--reps 20]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { cnnGradient } from '../apps/cnn/gradient.ts';
import { DEFAULT_CNN } from '../apps/cnn/model.ts';
import { jobApp } from '../apps/jobs.ts';
import { initValue } from '../server/node/init.ts';
import { decodeShard } from '../shared/apps/shard.ts';
import { tabTasks } from './browser/tab-tasks.ts';
import { median } from './consistency/run.ts';

const { values } = parseArgs({
  options: { tasks: { type: 'string', default: '40' }, reps: { type: 'string', default: '20' } },
});
const tasks = Number(values.tasks);
const reps = Number(values.reps);

const tab = await tabTasks(['--app', 'cnn', '--iterations', '100'], tasks);
const m = tab.taskMedians ?? {};
console.log(JSON.stringify({ bench: 'cnn-step', where: 'tab', backend: tab.backend, tasks: tab.tasks, medians: m }));

// The job's own shards (80 of 100 digits) and its tables' initial values, as the nodes make them.
const job = await jobApp('cnn').prepare({ job: 1 });
const shards = job.shards.map((b) => decodeShard(b));
const params = job.tables.map((t) => Float32Array.from({ length: t.keySpace }, (_, k) => initValue(t.init, k, 0)));
const node: Record<string, number> = {};
for (const backend of ['wasm', 'cpu']) {
  if (!(await tf.setBackend(backend))) continue;
  // cpu is for reference only: ~25× slower than wasm, so 3 timed calls after 1.
  const [warm, n] = backend === 'cpu' ? [1, 3] : [3, reps];
  const ms: number[] = [];
  for (let i = -warm; i < n; i++) {
    const t0 = performance.now();
    await cnnGradient(tf, shards[(i + warm) % shards.length], params, DEFAULT_CNN);
    if (i >= 0) ms.push(performance.now() - t0);
  }
  node[backend] = +median(ms).toFixed(2);
  console.log(JSON.stringify({ bench: 'cnn-step', where: 'node', backend, reps: n, ms_median: node[backend] }));
}
console.log(
  JSON.stringify({
    bench: 'cnn-step-ratio',
    tab_compute_ms: m.computeMs,
    node_wasm_ms: node.wasm,
    tab_over_node_wasm: +(m.computeMs / node.wasm).toFixed(2),
    tab_cycle_over_compute: +(m.cycleMs / m.computeMs).toFixed(2),
  }),
);
