/**
 * Choosing the TensorFlow.js backend at run time (STACK.md: wasm is fastest on these machines,
 * webgl/webgpu may win on a real GPU, so probe rather than hard-code). Importing this module
 * registers the wasm backend with the tfjs the bundle resolves; `tf` itself is passed in.
 *
 * Probe: each candidate backend that is registered and initialises runs the real workload — the
 * logistic-regression gradient on a seeded synthetic shard (300 examples × 64 non-zeros, 4k keys)
 * — once to warm up (kernel/shader compilation), then 3 timed calls; the fastest median wins.
 * The whole probe costs ~20-60 ms with wasm + cpu in Node; on webgl the warm-up call compiles
 * shaders (hundreds of ms). `pick: 'first'` skips timing and keeps the first backend that
 * initialises, for pages that must start at once.
 */
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { randomShard } from '../../shared/apps/random-shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { measureGradient } from './gradient-bench.ts';
import type { Tf } from './logreg.ts';

export const DEFAULT_BACKENDS = ['wasm', 'webgl', 'cpu'] as const;

export interface InitTfOptions {
  /**
   * Folder (URL or, in Node, file path; ending in '/') holding tfjs-backend-wasm's .wasm files.
   * Browser bundles need it (the gateway serves them at `/assets/tfjs/`); in Node the default —
   * next to the package's own script in node_modules — works.
   */
  wasmPaths?: string;
  /** Backends to try, in order (default wasm, webgl, cpu). Unregistered ones are skipped. */
  prefer?: readonly string[];
  /** 'fastest' (default): time the probe on each; 'first': the first that initialises. */
  pick?: 'fastest' | 'first';
}

export interface BackendProbe {
  backend: string;
  /** Median ms of the probe gradient; null when the backend did not initialise or failed. */
  ms: number | null;
  error?: string;
}

let wasmPathsSet = false;

/** Initialises each candidate backend and times the probe on it; leaves the last one active. */
export async function probeTfBackends(tf: Tf, opts: InitTfOptions = {}): Promise<BackendProbe[]> {
  if (opts.wasmPaths !== undefined && !wasmPathsSet) {
    setWasmPaths(opts.wasmPaths);
    wasmPathsSet = true;
  }
  const shard = randomShard(7, { examples: 300, perExample: 64, keys: 4096 });
  const out: BackendProbe[] = [];
  for (const backend of opts.prefer ?? DEFAULT_BACKENDS) {
    if (tf.findBackendFactory(backend) === null) {
      out.push({ backend, ms: null, error: 'not registered' });
      continue;
    }
    try {
      if (!(await tf.setBackend(backend))) throw new Error('did not initialise');
      if (opts.pick === 'first') {
        out.push({ backend, ms: 0 });
        break;
      }
      const t = await measureGradient(tf, shard, { reps: 3, warmup: 1 });
      out.push({ backend, ms: t.msMedian });
    } catch (err) {
      out.push({ backend, ms: null, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}

/** Picks and activates a backend (see the file header); returns its name. TS_ERR_INTERNAL if none works. */
export async function initTf(tf: Tf, opts: InitTfOptions = {}): Promise<string> {
  const probes = await probeTfBackends(tf, opts);
  let best: BackendProbe | null = null;
  for (const p of probes) if (p.ms !== null && (best === null || p.ms < best.ms!)) best = p;
  if (best === null) throw new TabshardError('TS_ERR_INTERNAL', `no tfjs backend works: ${JSON.stringify(probes)}`);
  if (!(await tf.setBackend(best.backend)))
    throw new TabshardError('TS_ERR_INTERNAL', `tfjs backend ${best.backend} did not initialise`);
  return best.backend;
}
