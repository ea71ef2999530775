/**
 * The bench/kv worker process: times push, pull and pushpull through the worker library and the
 * same byte counts over a bare connection of the same transport, interleaved in blocks so both
 * see the same machine noise; prints one JSON line per (workload, op).
 */
import wrtc from '@roamhq/wrtc';
import { tcpDialer } from '../../client/transports/tcp.ts';
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { Worker } from '../../client/worker.ts';
import { encodePull, encodePush } from '../../shared/protocol/kv.ts';
import type { Conn, Dialer, TransportKind } from '../../shared/transport/types.ts';
import { partsLength } from '../../shared/transport/types.ts';
import { workloads } from './workloads.ts';

const cfg = JSON.parse(process.argv[2]) as {
  transport: TransportKind;
  seed: string;
  quick: boolean;
  workloads: string;
};
const tcp = tcpDialer();
const dialers: Partial<Record<TransportKind, Dialer>> = { tcp };
if (cfg.transport === 'webrtc') dialers.webrtc = new WebRtcDialer({ signalling: tcp, wrtc });
const worker = await Worker.connect({ seed: cfg.seed, dialers, prefer: [cfg.transport], workerId: 1 });

// The bare baseline: a connection of the same transport to the same server process.
const bare: Conn = await dialers[cfg.transport]!.dial(worker.cluster.addresses.s1[cfg.transport]!);
let waiting: (() => void) | null = null;
bare.onmessage = () => waiting?.();
function bareCall(parts: Uint8Array[]): Promise<void> {
  return new Promise((resolve) => {
    waiting = resolve;
    bare.send(parts);
  });
}
const rawAck = (bytes: number) => {
  const m = new Uint8Array(bytes);
  m[0] = 0xec;
  m[1] = 1;
  return m;
};
const rawFetch = (reqBytes: number, replyBytes: number) => {
  const m = new Uint8Array(Math.max(8, reqBytes));
  m[0] = 0xec;
  m[1] = 2;
  new DataView(m.buffer).setUint32(4, replyBytes, true);
  return m;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
const now = () => Number(process.hrtime.bigint()) / 1000;

for (const w of workloads()) {
  if (cfg.workloads && !cfg.workloads.split(',').includes(w.name)) continue;
  const t = worker.table(w.name);
  const grad = new Float32Array(w.n).fill(1);
  // Byte counts of the PS messages, so the bare baseline moves exactly as many bytes.
  const wireKeys =
    w.keys instanceof Float64Array
      ? ({ kind: 'list', keys: w.keys } as const)
      : ({ kind: 'range', ...w.keys } as const);
  const pushBytes = partsLength(
    encodePush({
      requestId: 0,
      job: 0,
      table: 0,
      clock: 0,
      task: { worker: 1, task: 0, attempt: 0, seq: 0 },
      keys: wireKeys,
      values: grad,
    }),
  );
  const pullBytes = partsLength(encodePull({ requestId: 0, job: 0, table: 0, clock: 0, keys: wireKeys }));
  const replyBytes = 32 + 4 * w.n;
  const pushMsg = rawAck(pushBytes);
  const pullMsg = rawFetch(pullBytes, replyBytes);
  const ops = {
    push: {
      ps: async () => void (await worker.wait(t.push(w.keys, grad))),
      bare: () => bareCall([pushMsg]),
    },
    pull: {
      ps: async () => void (await worker.wait(t.pull(w.keys))),
      bare: () => bareCall([pullMsg]),
    },
    pushpull: {
      ps: async () => {
        await worker.wait(t.push(w.keys, grad));
        await worker.wait(t.pull(w.keys));
      },
      bare: async () => {
        await bareCall([pushMsg]);
        await bareCall([pullMsg]);
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
    while (ps.length < reps) {
      for (let i = 0; i < block; i++) {
        const a = now();
        await run.ps();
        ps.push(now() - a);
      }
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
        workload: w.name,
        op,
        us_median: Math.round(us),
        bare_us_median: Math.round(bareUs),
        ratio: Number((us / bareUs).toFixed(3)),
        reps: ps.length,
        push_bytes: pushBytes,
        pull_bytes: pullBytes + replyBytes,
      }),
    );
  }
}
worker.close();
bare.close();
process.exit(0);
