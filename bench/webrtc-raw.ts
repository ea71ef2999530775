/**
 * Raw WebRTC transport benchmark: two peers in this process (@roamhq/wrtc, in-memory
 * signalling) over WebRtcDialer/WebRtcListener. Prints JSON lines: one-way throughput of
 * 4 MiB messages (MB/s = 1e6 bytes/s, median of trials) and the round trip of a 4 MiB message
 * echoed back (µs, median), plus a small-message round trip for reference.
 *
 *   node --import tsx bench/webrtc-raw.ts [--chunk=262144] [--high=4194304] [--low=1048576]
 *                                          [--poll=1] [--trials=12] [--mib=4]
 */
import wrtc from '@roamhq/wrtc';
import { WebRtcDialer, type WrtcImpl } from '../client/transports/webrtc.ts';
import { WebRtcListener } from '../server/transports/webrtc.ts';
import { type ChunkTuning, DEFAULT_TUNING } from '../shared/transport/chunked-conn.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import type { Conn } from '../shared/transport/types.ts';

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}

const tuning: Required<ChunkTuning> = {
  chunkSize: arg('chunk', DEFAULT_TUNING.chunkSize),
  highWaterMark: arg('high', DEFAULT_TUNING.highWaterMark),
  lowWaterMark: arg('low', DEFAULT_TUNING.lowWaterMark),
  pollMs: arg('poll', DEFAULT_TUNING.pollMs),
};
const trials = arg('trials', 12);
const size = arg('mib', 4) * 1024 * 1024;
const perTrial = 4; // messages per throughput trial

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Resolves with the next `n` messages on `conn` (the handler is replaced each time). */
function next(conn: Conn, n = 1): Promise<Uint8Array[]> {
  return new Promise((resolve) => {
    const got: Uint8Array[] = [];
    conn.onmessage = (m) => {
      got.push(m);
      if (got.length === n) resolve(got);
    };
  });
}

async function main(): Promise<void> {
  const impl = wrtc as unknown as WrtcImpl;
  const net = new MemoryNetwork({ maxDelay: 1 });
  const listener = new WebRtcListener({ signalling: net.listen('bench'), wrtc: impl, ...tuning });
  const accepted = new Promise<Conn>((resolve) => {
    listener.onconnection = resolve;
  });
  const client = await new WebRtcDialer({ signalling: net.dialer(), wrtc: impl, ...tuning }).dial(listener.address);
  const server = await accepted;
  const msg = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) msg[i] = i & 255;

  // Warm-up: one message each way.
  let p = next(server);
  client.send([msg]);
  await p;

  const rates: number[] = [];
  for (let t = 0; t < trials; t++) {
    p = next(server, perTrial);
    const t0 = performance.now();
    for (let i = 0; i < perTrial; i++) client.send([msg]);
    await p;
    rates.push((perTrial * size) / ((performance.now() - t0) / 1000) / 1e6);
  }

  server.onmessage = (m) => server.send([m]);
  const rtt = async (m: Uint8Array, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let t = 0; t < n; t++) {
      const reply = next(client);
      const t0 = performance.now();
      client.send([m]);
      await reply;
      out.push((performance.now() - t0) * 1000);
    }
    return out;
  };
  const big = await rtt(msg, Math.max(trials, 10));
  const small = await rtt(new Uint8Array(64), 200);

  const common = { ...tuning, messageBytes: size, transport: 'webrtc @roamhq/wrtc node<->node, one process' };
  const line = (o: object) => console.log(JSON.stringify({ ...o, ...common }));
  line({
    bench: 'webrtc-raw.oneway',
    mbPerSec: +median(rates).toFixed(1),
    min: +Math.min(...rates).toFixed(1),
    max: +Math.max(...rates).toFixed(1),
    trials,
    messagesPerTrial: perTrial,
  });
  line({ bench: 'webrtc-raw.rtt', us: Math.round(median(big)), min: Math.round(Math.min(...big)), trials: big.length });
  line({
    bench: 'webrtc-raw.rtt-64B',
    us: Math.round(median(small)),
    p99: Math.round(small.sort((a, b) => a - b)[197]),
  });

  client.close();
  server.close();
  await listener.close();
}

await main();
