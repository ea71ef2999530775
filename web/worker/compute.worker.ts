/**
 * The tab's compute thread (a Web Worker): initialises TensorFlow.js on the fastest backend that
 * starts here, keeps the shards the page handed it, and computes gradients on request, so the
 * page's own thread stays free for the network and the UI.
 *
 * Messages in:  {type: 'init', wasmPaths, info} · {type: 'shard', index, bytes} · {type: 'grad', id, index, values}
 * Messages out: {type: 'probe', probe} · {type: 'ready', backend} · {type: 'grad', id, grads, loss, examples} · {type: 'error', id?, message}
 * (`info` is the job's app, apps/contract.ts; `values` and `grads` have one array per table.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type AppInfo, bindApp, type TaskMath } from '../../apps/workers.ts';
import { initTf } from '../../client/tf-backend.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';

type In =
  | { type: 'init'; wasmPaths: string; info: AppInfo }
  | { type: 'shard'; index: number; bytes: Uint8Array }
  | { type: 'grad'; id: number; index: number; values: Float32Array[] };

const shards = new Map<number, DecodedShard>();
let app: TaskMath | null = null;
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<In>) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.type === 'init') {
      app = bindApp(m.info);
      const backend = await initTf(tf, {
        wasmPaths: m.wasmPaths,
        onprobe: (probe) => scope.postMessage({ type: 'probe', probe }),
      });
      scope.postMessage({ type: 'ready', backend });
    } else if (m.type === 'shard') {
      shards.set(m.index, decodeShard(m.bytes));
    } else if (m.type === 'grad') {
      const shard = shards.get(m.index);
      if (!shard) throw new Error(`shard ${m.index} was not loaded`);
      if (!app) throw new Error('gradient before init');
      const r = await app.gradient(tf, shard, m.values);
      scope.postMessage(
        { type: 'grad', id: m.id, grads: r.grads, loss: r.loss, examples: r.examples },
        r.grads.map((g) => g.buffer as ArrayBuffer),
      );
    }
  } catch (err) {
    scope.postMessage({ type: 'error', id: 'id' in m ? m.id : undefined, message: String(err) });
  }
};
