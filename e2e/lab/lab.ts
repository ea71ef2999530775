/**
 * The lab page's library: transport experiments that e2e tests and benchmarks drive through
 * `window.tabshardLab` with `page.evaluate`. Arguments and results are plain data (arrays, not
 * typed arrays), so they cross the evaluate boundary as they are. Not served by the gateway: the
 * e2e harness bundles an entry (main.ts here, or a benchmark's own, bench/lab/main.ts) and serves
 * it at `/lab` of the gateway's origin to the tabs it opens (e2e/lab-bundle.ts).
 *
 * A lab worker connects to a job through the gateway (`/api/jobs/:job/cluster`), preferring a
 * WebRTC data channel per node and falling back to the node's ws relay (client/transports/fallback.ts).
 * It pushes ad hoc, outside any task, so it says HELLO as admin to each node with the token the
 * caller passes to `connect`: an operator's tool, not a volunteer's page.
 */
import { type DialRecord, FallbackDialer } from '../../client/transports/fallback.ts';
import { WebRtcDialer } from '../../client/transports/webrtc.ts';
import { type WebSocketCtor, WsDialer } from '../../client/transports/ws.ts';
import { type Keys, Worker } from '../../client/worker.ts';
import { type ClusterInfo, parseClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import { decodeError } from '../../shared/protocol/control.ts';
import { decodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import type { TransportKind } from '../../shared/transport/types.ts';

export interface LabConnectOptions {
  job?: number;
  /** Deadline of a node's WebRTC dial before the ws fallback (default 3000 ms). */
  webrtcTimeoutMs?: number;
  prefer?: TransportKind[];
  /**
   * The cluster's admin token: the lab's pushes are ad hoc (no task), which the nodes take only
   * from an admin connection (PROTOCOL.md §6.2). Without it the lab can only read with a
   * capability it does not have: every request is refused.
   */
  adminToken?: string;
}

/** Plain-data keys: a sorted key list, or a range [begin, end). */
export type LabKeys = number[] | { begin: number; end: number };

export interface RawResult {
  /** Messages received: text as `text`; binary as `bytes`, and `errorCode` when it is an ERROR frame. */
  messages: Array<{ text?: string; bytes?: number; errorCode?: string }>;
  close?: { code: number; reason: string };
}

/** The ws dialer the lab's worker signals and falls back through. */
export const ws = new WsDialer(globalThis.WebSocket as unknown as WebSocketCtor);
let worker: Worker | null = null;
let fallback: FallbackDialer | null = null;
let cluster: ClusterInfo | null = null;

const $ = (id: string) => document.getElementById(id)!;

function show(rec: DialRecord): void {
  let li = document.getElementById(`node-${rec.node}`);
  if (!li) {
    li = document.createElement('li');
    li.id = `node-${rec.node}`;
    $('transports').append(li);
  }
  li.textContent =
    rec.kind === 'webrtc'
      ? `${rec.node}: WebRTC data channel (${rec.ms} ms)`
      : `${rec.node}: WebSocket relay — WebRTC failed (${rec.fallbackReason}), using the fallback`;
}

async function fetchCluster(job: number): Promise<ClusterInfo> {
  const res = await fetch(`/api/jobs/${job}/cluster`);
  const body = await res.json();
  if (!res.ok) throw new TabshardError(body.code ?? 'TS_ERR_INTERNAL', body.message);
  const info = parseClusterInfo(body);
  cluster = info;
  fallback?.learn(info);
  return info;
}

const toKeys = (k: LabKeys): Keys => (Array.isArray(k) ? Float64Array.from(k) : k);

export const lab = {
  /** Connects a worker to `job` through the gateway; resolves with the nodes and tables. */
  async connect(opts: LabConnectOptions = {}) {
    lab.close();
    const job = opts.job ?? 0;
    const webrtc = new WebRtcDialer({ signalling: ws });
    fallback = new FallbackDialer({ webrtc, ws, timeoutMs: opts.webrtcTimeoutMs ?? 3000, ondial: show });
    worker = await Worker.connect({
      seed: () => fetchCluster(job),
      dialers: { webrtc: fallback, ws },
      prefer: opts.prefer ?? ['webrtc', 'ws'],
      job,
      adminToken: opts.adminToken,
    });
    $('status').textContent = `worker ${worker.id} of job ${job}`;
    return {
      worker: worker.id,
      nodes: Object.keys(worker.cluster.addresses),
      tables: worker.cluster.tables.map((t) => t.name),
    };
  },

  /** Node id → the transport its connection uses (and why it fell back, if it did). */
  transports(): Record<string, DialRecord> {
    return Object.fromEntries(fallback?.used ?? []);
  },

  async push(table: string, keys: LabKeys, values: number[]): Promise<void> {
    const w = need();
    await w.wait(w.table(table).push(toKeys(keys), Float32Array.from(values)));
  },

  async pull(table: string, keys: LabKeys): Promise<number[]> {
    const w = need();
    return Array.from((await w.wait(w.table(table).pull(toKeys(keys))))!);
  },

  /**
   * Opens a WebSocket to the relay `/relay/<node>/<route>`, sends `message` (a string is sent as
   * a text frame, numbers as one binary frame), and reports what came back: until the socket
   * closes, or after the first message when `until` is 'message'.
   */
  raw(route: 'signal' | 'data', node: string, message: string | number[], until: 'close' | 'message' = 'close') {
    return new Promise<RawResult>((resolve, reject) => {
      const sock = new WebSocket(
        `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/relay/${encodeURIComponent(node)}/${route}`,
      );
      sock.binaryType = 'arraybuffer';
      const out: RawResult = { messages: [] };
      const timer = setTimeout(() => {
        sock.close();
        reject(new Error(`no ${until} within 10 s`));
      }, 10_000);
      sock.onopen = () => sock.send(typeof message === 'string' ? message : Uint8Array.from(message));
      sock.onmessage = (ev) => {
        if (typeof ev.data === 'string') out.messages.push({ text: ev.data });
        else {
          const bytes = new Uint8Array(ev.data as ArrayBuffer);
          const m: RawResult['messages'][number] = { bytes: bytes.byteLength };
          try {
            const f = decodeFrame(bytes);
            if (f.type === MsgType.ERROR) m.errorCode = decodeError(f).code;
          } catch {
            // not a frame (a signalling message is UTF-8 JSON in a binary message)
            m.text = new TextDecoder().decode(bytes);
          }
          out.messages.push(m);
        }
        if (until === 'message') {
          clearTimeout(timer);
          sock.close();
          resolve(out);
        }
      };
      sock.onclose = (ev) => {
        clearTimeout(timer);
        out.close = { code: ev.code, reason: ev.reason };
        resolve(out);
      };
    });
  },

  close(): void {
    worker?.close();
    worker = null;
    $('status').textContent = 'not connected';
  },
};

function need(): Worker {
  if (!worker) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'call tabshardLab.connect() first');
  return worker;
}

/** The connected worker and the cluster it learned (for extensions of the lab, e.g. bench/lab/main.ts). */
export function connected(): { worker: Worker; cluster: ClusterInfo } {
  return { worker: need(), cluster: cluster! };
}

export type Lab = typeof lab;
