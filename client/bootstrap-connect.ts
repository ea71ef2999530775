/**
 * How a worker reaches a job's server nodes from the gateway alone (docs/workers.md, "Addresses
 * a worker uses"): the cluster view comes from `GET /api/jobs/:job/cluster` (relay addresses,
 * ICE servers), each node is dialled over WebRTC signalled through the gateway's relay — with
 * fresh ICE servers when the TURN credentials expire — falling back to the node's ws relay when
 * the data channel does not open in time, or over the ws relay alone (`transport: 'ws'`).
 */
import type { BootOptions, WorkerPlatform } from './bootstrap-types.ts';
import type { GatewayApi } from './gateway-api.ts';
import { type DialRecord, FallbackDialer } from './transports/fallback.ts';
import { WebRtcDialer } from './transports/webrtc.ts';
import { WsDialer } from './transports/ws.ts';
import { Worker } from './worker.ts';

/** Deadline for a node's WebRTC data channel before its ws relay is dialled instead, ms. */
const ICE_TIMEOUT_MS = { auto: 4000, webrtc: 10_000 } as const;

export interface Connected {
  worker: Worker;
  /** The WebSocket dialer (the scheduler session goes over it too). */
  ws: WsDialer;
  /** Per node, the transport kind of its connection. */
  transports: Record<string, string>;
  /** Per node: `webrtc` (direct), `turn` (through a TURN server) or `ws`. */
  routes: Record<string, string>;
}

/** Connects a Worker to every node of `job`'s ring; `ondial` hears how each node's connection was made. */
export async function connectWorker(
  platform: WorkerPlatform,
  api: GatewayApi,
  job: number,
  opts: BootOptions,
  ondial: (rec: DialRecord) => void,
): Promise<Connected> {
  const transport = opts.transport ?? 'auto';
  const ws = new WsDialer(platform.WebSocket);
  const fallback = new FallbackDialer({
    webrtc: new WebRtcDialer({
      signalling: ws,
      wrtc: platform.wrtc,
      relayOnly: opts.relayOnly ?? false,
      refreshIce: async () => (await api.cluster(job)).iceServers,
    }),
    ws,
    timeoutMs: opts.iceTimeoutMs ?? ICE_TIMEOUT_MS[transport === 'ws' ? 'auto' : transport],
    ondial,
  });
  const worker = await Worker.connect({
    seed: async () => {
      const cluster = await api.cluster(job);
      fallback.learn(cluster);
      return cluster;
    },
    dialers: transport === 'ws' ? { ws } : { webrtc: fallback, ws },
    prefer: transport === 'ws' ? ['ws'] : ['webrtc', 'ws'],
    job,
    cacheKeys: opts.cacheKeys ?? true,
  });
  try {
    const transports = await worker.connectAll();
    return { worker, ws, transports, routes: await worker.routes() };
  } catch (err) {
    worker.close();
    throw err;
  }
}
