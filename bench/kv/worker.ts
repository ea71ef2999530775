/**
 * The bench/kv worker process: times push, pull and pushpull through the worker library and the
 * same byte counts over the floor (bare-client.ts: a plain socket, or a plain WebRTC data channel
 * when the transport is webrtc, to bare-server.ts, no framing of ours), interleaved in blocks so
 * both see the same machine noise. Garbage collection is measured on both sides of the PS path: this process (perf_hooks) and the server node (its
 * STATS `gc` totals, read between blocks). One JSON line per (workload, op).
 *
 * With `cap` (the `-caps` variant, run.ts): the servers enforce capabilities; the worker presents
 * `cap` on each of its connections (and the stats one) once, before anything is timed, and
 * pushes under the stamp it names (task 1, attempt 0). Only the `-caps` variants run then.
 */
import wrtc from '@roamhq/wrtc';
import { tcpDialer } from '../../client/transports/tcp.ts';
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { Worker } from '../../client/worker.ts';
import { startGcMonitor } from '../../server/node/gc-monitor.ts';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { encodeCap } from '../../shared/protocol/cap.ts';
import { decodeObject, encodeJson } from '../../shared/protocol/control.ts';
import { MsgType } from '../../shared/protocol/frame.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import type { Dialer, TransportKind } from '../../shared/transport/types.ts';
import { openBare } from './bare-client.ts';
import { workloads } from './workloads.ts';

const cfg = JSON.parse(process.argv[2]) as {
  transport: TransportKind;
  seed: string;
  bare: string;
  quick: boolean;
  workloads: string;
  /** A task capability for worker 1, task 1, attempt 0 of job 0, and the layout (the caps variant). */
  cap?: string;
  cluster?: ClusterInfo;
};
const cap = cfg.cap;
const tcp = tcpDialer();
const dialers: Partial<Record<TransportKind, Dialer>> = { tcp };
if (cfg.transport === 'webrtc') dialers.webrtc = new WebRtcDialer({ signalling: tcp, wrtc });
// A node that enforces capabilities answers a ring query only under one: the layout comes from run.ts.
const seed = cfg.cluster ? async () => cfg.cluster! : cfg.seed;
const worker = await Worker.connect({ seed, dialers, prefer: [cfg.transport], workerId: 1 });
// The same requests with key-list caching off: key lists travel in full every time.
const uncached = cap
  ? null
  : await Worker.connect({ seed, dialers, prefer: [cfg.transport], workerId: 2, cacheKeys: false });
// Server-side GC totals come over a connection of their own (not timed).
const statsPeer = new RpcPeer(await tcp.dial(cfg.seed));
if (cap) {
  // Once per connection, before anything is timed; pushes then carry the stamp the capability names.
  worker.setTask(1, 0);
  await worker.connectAll();
  await Promise.all(
    worker.currentRing.nodes.map(
      (node) =>
        new Promise<void>((resolve, reject) =>
          worker.sendSlice(
            node,
            (id) => encodeCap(id, 0, cap),
            (err) => (err ? reject(err) : resolve()),
          ),
        ),
    ),
  );
  await statsPeer.call((id) => encodeCap(id, 0, cap));
}
const serverGcMs = async (): Promise<number> => {
  const s = decodeObject(await statsPeer.call((id) => encodeJson(MsgType.STATS, id, {}))) as { gc?: { ms: number } };
  return s.gc?.ms ?? Number.NaN;
};
const gc = startGcMonitor();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
const now = () => Number(process.hrtime.bigint()) / 1000;

/** The workloads, and a key-list workload again with caching off (`-uncached`); with `cap`, the `-caps` variants only. */
const runs = workloads().flatMap((w) =>
  cap
    ? [{ w, name: `${w.name}-caps`, worker }]
    : uncached && w.keys instanceof Float64Array
      ? [
          { w, name: w.name, worker },
          { w, name: `${w.name}-uncached`, worker: uncached },
        ]
      : [{ w, name: w.name, worker }],
);

for (const { w, name, worker } of runs) {
  if (cfg.workloads && !cfg.workloads.split(',').some((x) => x === name || x === w.name)) continue;
  const t = worker.table(w.name);
  const grad = new Float32Array(w.n).fill(1);
  const out = new Float32Array(w.n);
  // The bytes the PS moves per request in its steady state (a cached key list goes by its hash
  // after the first time), so that the floor moves exactly as many: the second push and pull.
  let pushBytes = 0;
  let pullBytes = 0;
  let replyBytes = 0;
  for (let i = 0; i < 2; i++) {
    const b = { ...worker.bytes };
    await worker.wait(t.push(w.keys, grad));
    await worker.wait(t.pull(w.keys, { out }));
    pushBytes = worker.bytes.pushed - b.pushed;
    pullBytes = worker.bytes.requested - b.requested;
    replyBytes = worker.bytes.pulled - b.pulled;
  }
  const ackBytes = 32;
  const barePush = await openBare(cfg.bare, pushBytes, ackBytes);
  const barePull = await openBare(cfg.bare, pullBytes, replyBytes);
  const ops = {
    push: {
      ps: async () => void (await worker.wait(t.push(w.keys, grad))),
      bare: () => barePush.call(),
    },
    pull: {
      ps: async () => void (await worker.wait(t.pull(w.keys, { out }))),
      bare: () => barePull.call(),
    },
    pushpull: {
      ps: async () => {
        await worker.wait(t.push(w.keys, grad));
        await worker.wait(t.pull(w.keys, { out }));
      },
      bare: async () => {
        await barePush.call();
        await barePull.call();
      },
    },
  };
  const reps = w.reps[cfg.quick ? 1 : 0];
  const block = Math.max(1, Math.floor(reps / 6));
  for (const [op, run] of Object.entries(ops)) {
    for (let i = 0; i < Math.min(5, reps); i++) {
      await run.ps();
      await run.bare();
    }
    const ps: number[] = [];
    const br: number[] = [];
    let psWallUs = 0;
    let clientGcMs = 0;
    let nodeGcMs = 0;
    while (ps.length < reps) {
      const s0 = await serverGcMs();
      const g0 = gc.totals().ms;
      const w0 = now();
      for (let i = 0; i < block; i++) {
        const a = now();
        await run.ps();
        ps.push(now() - a);
      }
      psWallUs += now() - w0;
      // GC entries are delivered asynchronously: let them arrive before reading the totals.
      await new Promise((resolve) => setImmediate(resolve));
      clientGcMs += gc.totals().ms - g0;
      nodeGcMs += (await serverGcMs()) - s0;
      for (let i = 0; i < block; i++) {
        const a = now();
        await run.bare();
        br.push(now() - a);
      }
    }
    const us = median(ps);
    const bareUs = median(br);
    console.log(
      JSON.stringify({
        bench: 'kv',
        transport: cfg.transport,
        floor: cfg.bare.startsWith('webrtc+') ? 'webrtc' : 'tcp',
        workload: name,
        op,
        us_median: Math.round(us),
        bare_us_median: Math.round(bareUs),
        ratio: Number((us / bareUs).toFixed(3)),
        reps: ps.length,
        push_bytes: pushBytes,
        pull_bytes: pullBytes + replyBytes,
        key_cache: worker.cachesKeys,
        server_gc_pct: Number(((100 * nodeGcMs * 1000) / psWallUs).toFixed(2)),
        worker_gc_pct: Number(((100 * clientGcMs * 1000) / psWallUs).toFixed(2)),
      }),
    );
  }
  barePush.close();
  barePull.close();
}
gc.stop();
statsPeer.close();
worker.close();
uncached?.close();
process.exit(0);
