/**
 * The page's gradient computation for the bootstrap (client/bootstrap-types.ts, WorkerCompute):
 * a compute Web Worker (compute.worker.ts) started for the job's app, tfjs initialised there on
 * its fastest backend, each shard handed to it once, gradient requests turned into promises.
 */
import type { AppInfo } from '../../apps/contract.ts';
import type { WorkerCompute } from '../../client/bootstrap-types.ts';
import type { GradientResult } from '../../client/runner.ts';
import type { BackendProbe } from '../../client/tf-backend.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';

export class ComputeClient implements WorkerCompute {
  /** The backend probe's results, as they arrive. */
  readonly probes: BackendProbe[] = [];
  private readonly pending = new Map<number, { resolve: (r: GradientResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private w: globalThis.Worker | null = null;

  /** `url`: the compute worker's bundle; `wasmPaths`: where tfjs finds its .wasm files. */
  constructor(
    private readonly url: string,
    private readonly wasmPaths: string,
  ) {}

  /** Starts the Web Worker for `info`'s app; resolves once tfjs picked its backend there. */
  start(info: AppInfo): Promise<{ backend: string; probes: BackendProbe[] }> {
    const w = new Worker(this.url, { type: 'module' });
    this.w = w;
    const ready = new Promise<{ backend: string; probes: BackendProbe[] }>((resolve, reject) => {
      w.onmessage = (e) => {
        const m = e.data;
        if (m.type === 'probe') this.probes.push(m.probe);
        else if (m.type === 'ready') resolve({ backend: m.backend, probes: this.probes });
        else if (m.type === 'grad') this.settle(m.id)?.resolve(m);
        else if (m.type === 'error') {
          const err = new Error(m.message);
          if (m.id === undefined) reject(err);
          else this.settle(m.id)?.reject(err);
        }
      };
      w.onerror = (e) => reject(new Error(e.message || 'compute worker failed'));
    });
    w.postMessage({ type: 'init', wasmPaths: this.wasmPaths, info });
    return ready;
  }

  /** Hands shard `index` to the Web Worker (once per shard: the bootstrap reads each once). */
  load(index: number, bytes: Uint8Array): void {
    this.worker().postMessage({ type: 'shard', index, bytes });
  }

  /** The gradient at `values` (the pulled values of each of the app's tables; they are transferred). */
  gradient(shard: DecodedShard, values: Float32Array[]): Promise<GradientResult> {
    const w = this.worker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage(
        { type: 'grad', id, index: shard.index, values },
        values.map((v) => v.buffer as ArrayBuffer),
      );
    });
  }

  close(): void {
    this.w?.terminate();
    this.w = null;
    for (const p of this.pending.values()) p.reject(new Error('compute worker closed'));
    this.pending.clear();
  }

  private worker(): globalThis.Worker {
    if (!this.w) throw new Error('compute worker not started');
    return this.w;
  }

  private settle(id: number) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }
}
