/**
 * The lab's gradient benchmark: examples/s of the logistic-regression gradient on one of a job's
 * real shards, timed by the same loop as `npm run bench:gradient` (client/gradient-timing.ts),
 * inside a Web Worker with the backend `initTf` picks — where the worker page computes
 * (web/worker/compute.worker.ts).
 *
 * The Web Worker is this lab bundle itself, started as a module worker: the harness serves one
 * bundle per lab, and a worker may only load same-origin scripts (the pages' CSP), so the lab
 * entry (main.ts) serves the gradient protocol below when it runs without a `document`.
 *
 * In:  {type: 'gradient', id, wasmPaths, bytes, reps, warmup}
 * Out: {type: 'gradient', id, backend, probes, timing} · {type: 'error', id, message}
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type GradientTiming, measureGradient } from '../../client/gradient-timing.ts';
import { type BackendProbe, initTf } from '../../client/tf-backend.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';

export interface GradientBenchOptions {
  job?: number;
  shard?: number;
  /** Timed calls (default 20). */
  reps?: number;
  /** Untimed calls first (default 3). */
  warmup?: number;
}

export interface GradientBenchResult {
  backend: string;
  probes: BackendProbe[];
  timing: LabGradientTiming;
  /** Bytes of the shard as downloaded. */
  shardBytes: number;
  /** Milliseconds initTf took in the Web Worker (backend probe included; paid once per worker). */
  initMs: number;
}

export interface LabGradientTiming extends GradientTiming {
  /** Wall time of the timed calls / reps: finer than the median where timers are coarse (see timeGradient). */
  msMean: number;
}

/**
 * measureGradient after its own warm-up, plus the mean over the timed calls from one wall-clock
 * span. A page that is not cross-origin isolated sees `performance.now()` in 100 µs steps, which
 * is ~10% of one call on a 300-example shard: the median is quantised, the mean is not.
 */
export async function timeGradient(
  t: typeof tf,
  shard: DecodedShard,
  opts: { reps: number; warmup: number },
): Promise<LabGradientTiming> {
  if (opts.warmup > 0) await measureGradient(t, shard, { reps: opts.warmup, warmup: 0 });
  const t0 = performance.now();
  const timing = await measureGradient(t, shard, { reps: opts.reps, warmup: 0 });
  return { ...timing, msMean: (performance.now() - t0) / timing.reps };
}

interface Request {
  type: 'gradient';
  id: number;
  wasmPaths: string;
  bytes: Uint8Array;
  reps: number;
  warmup: number;
}

let backend: Promise<{ backend: string; probes: BackendProbe[]; initMs: number }> | null = null;

/** The Web Worker side: answers gradient requests (tfjs initialised once, on the first). */
export function serveGradientWorker(): void {
  const scope = self as unknown as {
    onmessage: ((e: MessageEvent<Request>) => void) | null;
    postMessage(msg: unknown): void;
  };
  scope.onmessage = async (e) => {
    const m = e.data;
    try {
      backend ??= (async () => {
        const probes: BackendProbe[] = [];
        const t0 = performance.now();
        const name = await initTf(tf, { wasmPaths: m.wasmPaths, onprobe: (p) => probes.push(p) });
        return { backend: name, probes, initMs: performance.now() - t0 };
      })();
      const b = await backend;
      const timing = await timeGradient(tf, decodeShard(m.bytes), { reps: m.reps, warmup: m.warmup });
      scope.postMessage({ type: 'gradient', id: m.id, ...b, timing });
    } catch (err) {
      scope.postMessage({ type: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) });
    }
  };
}

let worker: globalThis.Worker | null = null;
let nextId = 1;

/**
 * The page side: downloads shard `shard` of `job`, starts the Web Worker on first use (later
 * calls reuse it, so rounds can alternate with another process's measurement), and times the
 * gradient there.
 */
export async function gradientBench(opts: GradientBenchOptions = {}): Promise<GradientBenchResult> {
  const res = await fetch(`/api/jobs/${opts.job ?? 1}/shards/${opts.shard ?? 0}`);
  if (!res.ok) throw new Error(`shard download: HTTP ${res.status} ${await res.text()}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  worker ??= new globalThis.Worker('/assets/lab.js', { type: 'module' });
  const w = worker;
  const id = nextId++;
  const reply = await new Promise<Omit<GradientBenchResult, 'shardBytes'>>((resolve, reject) => {
    w.onmessage = (e) => {
      if (e.data.id !== id) return;
      if (e.data.type === 'error') reject(new Error(e.data.message));
      else resolve(e.data);
    };
    w.onerror = (e) => reject(new Error(e.message || 'lab Web Worker failed'));
    w.postMessage({
      type: 'gradient',
      id,
      wasmPaths: `${location.origin}/assets/tfjs/`,
      bytes,
      reps: opts.reps ?? 20,
      warmup: opts.warmup ?? 3,
    } satisfies Request);
  });
  return { ...reply, shardBytes: bytes.byteLength };
}
