/**
 * The lab's transport benchmark: on one connection kind to one node, the same byte counts moved
 * as parameter-server requests (push/pull through the worker library, node-side updater and
 * store included) and as raw messages the node acknowledges or answers without decoding
 * (raw-echo.ts; the benchmark's node has the echo injected, bench/browser/echo-node.ts). One
 * request in flight; reps interleaved so both see the same noise; medians reported. The raw
 * messages use a second connection of the same kind to the same node (the worker's own
 * connection belongs to its request/reply layer).
 */
import type { Worker } from '../../client/worker.ts';
import { encodePush, type KvKeys } from '../../shared/protocol/kv.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { type Conn, partsLength } from '../../shared/transport/types.ts';
import { rawPull, rawPush } from './raw-echo.ts';

export interface BenchOptions {
  node?: string;
  /** Timed repetitions per op (default 7; one more warm-up rep is discarded). */
  reps?: number;
  /** Floats of the dense range (default 2^20). */
  floats?: number;
  /** Keys of the sparse push (default 100 000). */
  sparseKeys?: number;
  denseTable?: string;
  sparseTable?: string;
  /** Transport of the raw connection (default 'webrtc'). */
  transport?: 'webrtc' | 'ws';
}

export interface BenchRow {
  op: 'dense-push' | 'dense-pull' | 'sparse-push';
  /** Bytes of the request (push) or reply (pull) carrying the values. */
  bytes: number;
  psMs: number;
  rawMs: number;
  psMBps: number;
  rawMBps: number;
  /** PS throughput / raw throughput. */
  ratio: number;
}

const HEADER = 32;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function runBench(
  w: Worker,
  dialRaw: (kind: 'webrtc' | 'ws') => Promise<Conn>,
  opts: BenchOptions,
): Promise<{ transport: string; rows: BenchRow[] }> {
  const reps = opts.reps ?? 7;
  const floats = opts.floats ?? 1 << 20;
  const nSparse = opts.sparseKeys ?? 100_000;
  const dense = w.table(opts.denseTable ?? 'sum-dense');
  const sparse = w.table(opts.sparseTable ?? 'sum-sparse');
  const transport = opts.transport ?? 'webrtc';
  const raw = await dialRaw(transport);
  let waiting: (() => void) | null = null;
  raw.onmessage = () => waiting?.();
  const rawCall = (msg: Uint8Array) =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      raw.send([msg]);
    });

  const grads = new Float32Array(floats).fill(1);
  const keys = randomSortedKeys(createRng(5), nSparse, sparse.spec.keySpace);
  const sparseVals = new Float32Array(nSparse).fill(1);
  const range = { begin: 0, end: floats };
  // The raw messages are exactly as long as the PS requests they stand for.
  const pushBytes = (k: KvKeys, values: Float32Array) =>
    partsLength(
      encodePush({
        requestId: 0,
        job: 0,
        table: 0,
        clock: 0,
        task: { worker: 0, task: 0, attempt: 0, seq: 0 },
        keys: k,
        values,
      }),
    );
  const denseBytes = pushBytes({ kind: 'range', ...range }, grads);
  const sparseBytes = pushBytes({ kind: 'list', keys }, sparseVals);
  const ops: Array<{ op: BenchRow['op']; bytes: number; ps: () => Promise<unknown>; raw: Uint8Array }> = [
    { op: 'dense-push', bytes: denseBytes, ps: () => w.wait(dense.push(range, grads)), raw: rawPush(denseBytes) },
    {
      op: 'dense-pull',
      bytes: HEADER + 4 * floats,
      ps: () => w.wait(dense.pull(range)),
      raw: rawPull(HEADER, HEADER + 4 * floats),
    },
    {
      op: 'sparse-push',
      bytes: sparseBytes,
      ps: () => w.wait(sparse.push(keys, sparseVals)),
      raw: rawPush(sparseBytes),
    },
  ];
  const rows: BenchRow[] = [];
  try {
    for (const o of ops) {
      const ps: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i <= reps; i++) {
        let t = performance.now();
        await o.ps();
        const a = performance.now() - t;
        t = performance.now();
        await rawCall(o.raw);
        const b = performance.now() - t;
        if (i > 0) {
          ps.push(a);
          bare.push(b);
        }
      }
      const psMs = median(ps);
      const rawMs = median(bare);
      const mbps = (ms: number) => Math.round((o.bytes / 1e6 / (ms / 1000)) * 10) / 10;
      rows.push({
        op: o.op,
        bytes: o.bytes,
        psMs: Math.round(psMs * 100) / 100,
        rawMs: Math.round(rawMs * 100) / 100,
        psMBps: mbps(psMs),
        rawMBps: mbps(rawMs),
        ratio: Math.round((rawMs / psMs) * 1000) / 1000,
      });
    }
  } finally {
    raw.close();
  }
  return { transport: raw.kind, rows };
}
