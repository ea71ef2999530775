/**
 * WebRTC with a WebSocket fallback, as one `Dialer` (kind 'webrtc'): dials a node's WebRTC
 * address and, when the data channel is not open within `timeoutMs` (ICE blocked, no WebRTC in
 * this browser), dials the same node's `ws` address instead. It records which transport each
 * node's connection actually uses, so the page and the session can say so.
 *
 * It learns which ws address stands in for which WebRTC address from the cluster info
 * (`learn(info)`), e.g. the gateway's relay addresses from `GET /api/jobs/:job/cluster`.
 */
import type { ClusterInfo } from '../../shared/cluster.ts';
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';

/** How the last connection to one node was made. */
export interface DialRecord {
  node: string;
  address: string;
  kind: 'webrtc' | 'ws';
  /** Time from the start of the dial until the connection opened (fallback included). */
  ms: number;
  /** Why WebRTC was not used (the failed dial's error code and message), when it was not. */
  fallbackReason?: string;
}

export interface FallbackDialerOptions {
  /** The WebRTC dialer; given the cluster's ICE servers when it takes them (`WebRtcDialer.useIceServers`). */
  webrtc: Dialer & { useIceServers?(servers: RTCIceServer[]): void };
  ws: Dialer;
  /** Deadline for the WebRTC dial before falling back, in ms (default 3000). */
  timeoutMs?: number;
  /** Once a node fell back, dial its ws address straight away next time (default true). */
  sticky?: boolean;
  /** Called after each successful dial. */
  ondial?: (rec: DialRecord) => void;
  now?: () => number;
}

export class FallbackDialer implements Dialer {
  readonly kind = 'webrtc' as const;
  /** Node id → how its current connection was made. */
  readonly used = new Map<string, DialRecord>();
  private readonly routes = new Map<string, { node: string; ws?: string }>();
  private readonly fellBack = new Set<string>();

  constructor(private readonly opts: FallbackDialerOptions) {}

  /** Learns each node's WebRTC and ws addresses (call with every new cluster info). */
  learn(info: ClusterInfo): void {
    if (info.iceServers) this.opts.webrtc.useIceServers?.(info.iceServers);
    for (const [node, a] of Object.entries(info.addresses)) {
      if (a.webrtc) this.routes.set(a.webrtc, { node, ws: a.ws });
      if (a.ws) this.routes.set(a.ws, { node });
    }
  }

  async dial(address: string): Promise<Conn> {
    const now = this.opts.now ?? (() => performance.now());
    const started = now();
    const route = this.routes.get(address);
    const node = route?.node ?? address;
    if (address.startsWith('ws')) return this.done(node, address, 'ws', started, await this.opts.ws.dial(address));
    if (!(this.opts.sticky !== false && this.fellBack.has(address))) {
      try {
        return this.done(node, address, 'webrtc', started, await this.dialWebRtc(address));
      } catch (err) {
        const e = toTabshardError(err, 'TS_ERR_CONNECT_FAILED');
        if (!route?.ws) throw e;
        this.fellBack.add(address);
        const conn = await this.opts.ws.dial(route.ws);
        return this.done(node, route.ws, 'ws', started, conn, `${e.code}: ${e.message}`);
      }
    }
    return this.done(node, route!.ws!, 'ws', started, await this.opts.ws.dial(route!.ws!), 'fell back before');
  }

  private dialWebRtc(address: string): Promise<Conn> {
    const timeoutMs = this.opts.timeoutMs ?? 3000;
    return new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: no data channel after ${timeoutMs} ms`));
      }, timeoutMs);
      this.opts.webrtc.dial(address).then(
        (conn) => {
          clearTimeout(timer);
          if (late) conn.close();
          else resolve(conn);
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private done(node: string, address: string, kind: DialRecord['kind'], started: number, conn: Conn, why?: string) {
    const rec: DialRecord = {
      node,
      address,
      kind,
      ms: Math.round((this.opts.now ?? performance.now.bind(performance))() - started),
    };
    if (why) rec.fallbackReason = why;
    this.used.set(node, rec);
    this.opts.ondial?.(rec);
    return conn;
  }
}
