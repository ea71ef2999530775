/**
 * The page's handle on its compute Web Worker: starts it, waits for tfjs to initialise, hands it
 * each shard once, and turns gradient requests into promises.
 */
import type { AppInfo } from '../../apps/contract.ts';
import type { GradientResult } from '../../client/runner.ts';
import type { BackendProbe } from '../../client/tf-backend.ts';

export class ComputeClient {
  readonly ready: Promise<string>;
  /** The backend probe's results, as they arrive. */
  readonly probes: BackendProbe[] = [];
  private readonly pending = new Map<number, { resolve: (r: GradientResult) => void; reject: (e: Error) => void }>();
  private readonly loaded = new Set<number>();
  private nextId = 1;
  private readonly w: globalThis.Worker;

  constructor(url: string, wasmPaths: string, info: AppInfo) {
    this.w = new Worker(url, { type: 'module' });
    this.ready = new Promise((resolve, reject) => {
      this.w.onmessage = (e) => {
        const m = e.data;
        if (m.type === 'probe') this.probes.push(m.probe);
        else if (m.type === 'ready') resolve(m.backend);
        else if (m.type === 'grad') this.settle(m.id)?.resolve(m);
        else if (m.type === 'error') {
          const err = new Error(m.message);
          if (m.id === undefined) reject(err);
          else this.settle(m.id)?.reject(err);
        }
      };
      this.w.onerror = (e) => reject(new Error(e.message || 'compute worker failed'));
    });
    this.w.postMessage({ type: 'init', wasmPaths, info });
  }

  /** The gradient at `values` (the pulled values of each of the app's tables; they are transferred). */
  gradient(index: number, bytes: Uint8Array, values: Float32Array[]): Promise<GradientResult> {
    if (!this.loaded.has(index)) {
      this.w.postMessage({ type: 'shard', index, bytes });
      this.loaded.add(index);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.w.postMessage(
        { type: 'grad', id, index, values },
        values.map((v) => v.buffer as ArrayBuffer),
      );
    });
  }

  terminate(): void {
    this.w.terminate();
  }

  private settle(id: number) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }
}
