/**
 * Gateway relays (docs/workers.md): a browser tab knows only the gateway, so the gateway copies
 * WebSocket messages one for one to a server node over TCP and back.
 *
 *   GET /relay/:node/signal  (WebSocket) → the node's WebRTC signalling port (`webrtc+tcp://…`)
 *   GET /relay/:node/data    (WebSocket) → the node's data port (`tcp://…`), the ws fallback
 *   GET /api/jobs/:job/cluster           → the job's ClusterInfo with relay addresses
 *
 * Only the WebRTC handshake passes through the signal relay; the data channel then runs tab ↔
 * node directly. Either side closing closes the other. Errors reach the tab as WebSocket close
 * code 4000 with the error code as reason: an unknown node or an unreachable node is
 * TS_ERR_CONNECT_FAILED, a text message TS_ERR_FRAME_MALFORMED. A message above the route's
 * limit (65 536 bytes on /signal, `maxMessage` on /data) is refused by `ws` at its frame header
 * with close code 1009, before the gateway buffers it (ws-routes.ts). Bad contents are the node's
 * business: it answers bad signalling with an error signal and a bad frame with an ERROR frame,
 * per connection. Both relay routes count against the per-address relay cap (limits.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';
import { MAX_SIGNAL_BYTES } from '../../shared/transport/webrtc-peer.ts';
import type { IceConfig } from '../auth/turn.ts';
import { remoteOf, wsConn } from '../transports/ws.ts';
import type { WsLimitConfig } from './limits.ts';
import { wsRoute } from './ws-routes.ts';

export interface RelayOptions {
  cluster(): ClusterInfo;
  /** ICE servers handed to workers with each cluster reply (TURN credentials minted per reply); none: none. */
  ice?: IceConfig;
  /** Dials the nodes' TCP addresses. */
  dialer: Dialer;
  /** Largest message relayed on `/data` (default 64 MiB); `/signal` allows MAX_SIGNAL_BYTES. */
  maxMessage?: number;
}

export const DEFAULT_RELAY_MAX_MESSAGE = 64 * 1024 * 1024;
/** Messages a tab may send before its node connection is up; more closes the relay. */
const MAX_EARLY = 256;

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The job's view of `info` for a browser reaching the gateway at `host` (the request's Host
 * header): the job's tables, and for each node its relay addresses instead of its own.
 * `secure` picks wss:// (a gateway behind TLS).
 */
export function relayCluster(info: ClusterInfo, host: string, job: number, secure = false): ClusterInfo {
  if (!HOST.test(host)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'bad Host header');
  const scheme = secure ? 'wss' : 'ws';
  const addresses: ClusterInfo['addresses'] = {};
  for (const [node, a] of Object.entries(info.addresses)) {
    const n = encodeURIComponent(node);
    addresses[node] = { ws: `${scheme}://${host}/relay/${n}/data` };
    if (a.webrtc) addresses[node] = { webrtc: `webrtc+${scheme}://${host}/relay/${n}/signal`, ...addresses[node] };
  }
  return { ring: info.ring, addresses, tables: info.tables.filter((t) => t.job === job) };
}

/** Copies messages between `tab` and the node connection `node` resolves to, one for one. */
export function pipeConns(tab: Conn, node: Promise<Conn>): void {
  let peer: Conn | null = null;
  let early: Uint8Array[] = [];
  const forward = (to: Conn, from: Conn, m: Uint8Array) => {
    try {
      to.send([m]);
    } catch (err) {
      const e = toTabshardError(err);
      from.close(e);
      to.close(e);
    }
  };
  tab.onmessage = (m) => {
    if (peer) forward(peer, tab, m);
    else if (early.length < MAX_EARLY) early.push(m);
    else tab.close(new TabshardError('TS_ERR_FRAME_TOO_LARGE', 'too many messages before the node answered'));
  };
  tab.onclose = () => peer?.close();
  node.then(
    (c) => {
      if (tab.closed) return c.close();
      peer = c;
      c.onmessage = (m) => forward(tab, c, m);
      c.onclose = (err) => tab.close(err);
      for (const m of early) forward(c, tab, m);
      early = [];
    },
    (err) => tab.close(toTabshardError(err, 'TS_ERR_CONNECT_FAILED')),
  );
}

export const relayPlugin: FastifyPluginAsync<RelayOptions> = async (app, opts) => {
  const dataMax = opts.maxMessage ?? DEFAULT_RELAY_MAX_MESSAGE;

  /** The node's address for `route`, or a coded error. */
  const target = (node: string, route: 'signal' | 'data'): string => {
    const a = opts.cluster().addresses[node];
    if (!a) throw new TabshardError('TS_ERR_CONNECT_FAILED', `unknown node ${node}`);
    const address = route === 'signal' ? a.webrtc?.replace(/^webrtc\+/, '') : a.tcp;
    if (!address?.startsWith('tcp://'))
      throw new TabshardError(
        'TS_ERR_CONNECT_FAILED',
        `node ${node} has no ${route === 'signal' ? 'webrtc+tcp' : 'tcp'} address`,
      );
    return address;
  };

  const params = {
    type: 'object',
    properties: { node: { type: 'string', minLength: 1, maxLength: 64 } },
    required: ['node'],
  } as const;

  for (const route of ['signal', 'data'] as const) {
    const maxMessage = route === 'signal' ? MAX_SIGNAL_BYTES : dataMax;
    wsRoute<{ Params: { node: string } }>(
      app,
      `/relay/:node/${route}`,
      { maxPayload: maxMessage, schema: { params }, config: { wsGroup: 'relays' } satisfies WsLimitConfig },
      (socket, req) => {
        const tab = wsConn(socket, remoteOf(req.raw), { maxMessage });
        let node: Promise<Conn>;
        try {
          node = opts.dialer.dial(target(req.params.node, route));
        } catch (err) {
          node = Promise.reject(err);
        }
        pipeConns(tab, node);
      },
    );
  }

  app.get<{ Params: { job: number } }>(
    '/api/jobs/:job/cluster',
    {
      schema: {
        params: {
          type: 'object',
          properties: { job: { type: 'integer', minimum: 0, maximum: 0xffffffff } },
          required: ['job'],
        },
      },
    },
    async (req) => {
      const info = relayCluster(opts.cluster(), req.headers.host ?? '', req.params.job, req.protocol === 'https');
      if (info.tables.length === 0) throw new TabshardError('TS_ERR_UNKNOWN_JOB', String(req.params.job));
      // TURN credentials per reply, named for the asking address (the TURN server's log shows it).
      if (opts.ice && !opts.ice.empty)
        info.iceServers = opts.ice.servers(`tab-${req.ip.replace(/[^A-Za-z0-9.]/g, '')}`);
      return info;
    },
  );
};
