/**
 * Choosing the TensorFlow.js backend at run time (docs/architecture.md, platform notes: wasm is fastest on these machines,
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
import type { Tf } from '../apps/contract.ts';
import { randomShard } from '../shared/apps/random-shard.ts';
import { TabshardError } from '../shared/errors.ts';
import { measureGradient } from './gradient-timing.ts';

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
  /**
   * Stop probing further backends once the probe has taken this long (ms) and one works: a
   * software-rendered webgl (SwiftShader) can spend seconds compiling shaders (default 2000).
   */
  budgetMs?: number;
  /** Receives every probe result (for the page and the console). */
  onprobe?: (p: BackendProbe) => void;
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
  const started = performance.now();
  const budget = opts.budgetMs ?? 2000;
  for (const backend of opts.prefer ?? DEFAULT_BACKENDS) {
    if (out.some((p) => p.ms !== null) && performance.now() - started > budget) {
      out.push({ backend, ms: null, error: `skipped: probe budget of ${budget} ms spent` });
      continue;
    }
    if (tf.findBackendFactory(backend) === null) {
      out.push({ backend, ms: null, error: 'not registered' });
      continue;
    }
    const soft = backend === 'webgl' ? softwareRenderer() : null;
    if (soft) {
      // A CPU emulating a GPU is never faster than wasm here (docs/architecture.md, platform notes: ~8x slower) and its
      // shader compilation alone costs seconds per tab.
      out.push({ backend, ms: null, error: `skipped: software renderer (${soft})` });
      opts.onprobe?.(out[out.length - 1]);
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
    opts.onprobe?.(out[out.length - 1]);
  }
  return out;
}

/**
 * The WebGL renderer's name when it is a software rasteriser (SwiftShader, llvmpipe), else null
 * (a hardware GPU, or no WebGL here at all).
 */
export function softwareRenderer(): string | null {
  const Canvas = (globalThis as { OffscreenCanvas?: new (w: number, h: number) => OffscreenCanvas }).OffscreenCanvas;
  if (!Canvas) return null;
  try {
    const gl = new Canvas(1, 1).getContext('webgl2') ?? new Canvas(1, 1).getContext('webgl');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return /swiftshader|llvmpipe|software/i.test(name) ? name : null;
  } catch {
    return null;
  }
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
