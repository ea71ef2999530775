/**
 * The benchmarks' lab page (`npm run bench:browser`): the e2e lab (e2e/lab/lab.ts) plus two
 * benchmarks on `window.tabshardLab` — `bench` (raw data-channel throughput vs parameter-server
 * push/pull on one node, bench.ts) and `gradient` (the tfjs gradient on a real shard in a Web
 * Worker, gradient.ts). The e2e harness bundles this entry and serves it at `/lab` when a
 * benchmark starts it with `lab: 'bench/lab/main.ts'` (e2e/lab-bundle.ts).
 *
 * The same bundle started as a module Web Worker (no `document`) is the lab's compute thread for
 * the gradient benchmark.
 */
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { connected, lab, ws } from '../../e2e/lab/lab.ts';
import { type BenchOptions, runBench } from './bench.ts';
import { type GradientBenchOptions, gradientBench, serveGradientWorker } from './gradient.ts';

const benchLab = {
  ...lab,

  /** Raw data-channel throughput vs parameter-server push/pull on one node (see bench.ts). */
  async bench(opts: BenchOptions) {
    const { worker, cluster } = connected();
    const node = opts.node ?? Object.keys(cluster.addresses)[0];
    const rtc = new WebRtcDialer({ signalling: ws });
    return runBench(worker, (kind) => (kind === 'webrtc' ? rtc : ws).dial(cluster.addresses[node][kind]!), {
      ...opts,
      node,
    });
  },

  /** Examples/s of the logistic-regression gradient on a real shard, in a Web Worker (see gradient.ts). */
  gradient(opts: GradientBenchOptions = {}) {
    return gradientBench(opts);
  },
};

export type BenchLab = typeof benchLab;

if (typeof document === 'undefined') serveGradientWorker();
else (window as unknown as { tabshardLab: BenchLab }).tabshardLab = benchLab;
