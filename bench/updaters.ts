/**
 * Benchmark of the server updaters: JS vs wasm SIMD kernels on a 4 MB dense push (n = 2^20 f32).
 * Prints one JSON line per (updater, impl): median microseconds per apply over >= 50 repetitions.
 *
 *   node --import tsx bench/updaters.ts                 # the n = 1048576 lines
 *   node --import tsx bench/updaters.ts --sweep         # also small n, to place WASM_MIN_N
 *   node --import tsx bench/updaters.ts --block=32768   # wasm block size (floats per array)
 */

import { configureKernels, type ImplMode, WASM_MIN_N, wasmSimdAvailable } from '../server/updaters/dispatch.ts';
import { createUpdater, type Updater } from '../server/updaters/index.ts';
import { createRng } from '../shared/rng.ts';

const N = 1 << 20;
const WARMUP = 20;
const REPS = 60;
const UPDATERS = ['sum', 'sgd', 'adagrad', 'ftrl', 'adam'];
const SWEEP_SIZES = [16, 32, 64, 96, 128, 256, 512, 1024, 4096, 16384, 65536];

const args = process.argv.slice(2);
const sweep = args.includes('--sweep');
const blockArg = args.find((a) => a.startsWith('--block='));
if (blockArg) configureKernels({ blockFloats: Number(blockArg.slice('--block='.length)) });
if (!wasmSimdAvailable()) console.error('warning: WebAssembly SIMD unavailable, "wasm" lines measure the JS fallback');

function randomArray(n: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = createRng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

/** Median microseconds of one apply; each sample times `inner` back-to-back applies. */
function measure(updater: Updater, n: number, inner: number): number {
  const values = randomArray(n, 1, -1, 1);
  const grad = randomArray(n, 2, -1e-3, 1e-3);
  const state = updater.stateInit.map((v) => new Float32Array(n).fill(v));
  let step = 0;
  for (let r = 0; r < WARMUP * inner; r++) updater.apply(values, state, grad, ++step);
  const samples: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    for (let k = 0; k < inner; k++) updater.apply(values, state, grad, ++step);
    samples.push(((performance.now() - t0) * 1000) / inner);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

function run(name: string, impl: ImplMode, n: number): void {
  configureKernels({ mode: impl });
  const inner = Math.max(1, Math.floor(65536 / n));
  const us = measure(createUpdater(name), n, inner);
  const line = { bench: 'updaters', updater: name, impl, n, us_median: Number(us.toFixed(n < 4096 ? 3 : 1)) };
  console.log(JSON.stringify(line));
}

for (const name of UPDATERS) {
  for (const impl of ['js', 'wasm'] as const) run(name, impl, N);
}
if (sweep) {
  console.error(`current WASM_MIN_N = ${WASM_MIN_N}`);
  for (const name of UPDATERS) {
    for (const n of SWEEP_SIZES) for (const impl of ['js', 'wasm'] as const) run(name, impl, n);
  }
}
configureKernels({ mode: 'auto' });
