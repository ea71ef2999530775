/**
 * The accepting side of the WebRTC transport: a `Listener` built over any signalling
 * `Listener` (TCP, WebSocket, memory). Each incoming signalling connection carries one WebRTC
 * handshake (simple-peer signal data as UTF-8 JSON, one object per message); its data channel
 * becomes a `Conn` handed to `onconnection`. The handshake, the signalling format and the
 * chunked `Conn` are shared with the dialer: see `shared/transport/webrtc-peer.ts`.
 *
 * Address: `webrtc+<signalling address>`, e.g. `webrtc+tcp://127.0.0.1:1234`. The signalling
 * connection stays open as long as the data channel; losing either ends the `Conn`.
 */
import SimplePeer from 'simple-peer';
import type { TabshardError } from '../../shared/errors.ts';
import type { ChunkTuning } from '../../shared/transport/chunked-conn.ts';
import type { Conn, Listener } from '../../shared/transport/types.ts';
import { openPeerConn } from '../../shared/transport/webrtc-peer.ts';

/** A WebRTC implementation for simple-peer (`@roamhq/wrtc` in Node). */
export type WrtcImpl = NonNullable<SimplePeer.Options['wrtc']>;

export interface WebRtcListenerOptions extends ChunkTuning {
  /** Where handshakes arrive; the WebRTC listener takes over its `onconnection`. */
  signalling: Listener;
  wrtc?: WrtcImpl;
  /** RTCPeerConnection configuration; default `{ iceServers: [] }` (host candidates only). */
  config?: RTCConfiguration;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** A handshake not done after this many ms is abandoned (default 10 000). */
  timeoutMs?: number;
}

/** Accepts WebRTC connections whose handshakes arrive over `opts.signalling`. */
export class WebRtcListener implements Listener {
  readonly kind = 'webrtc' as const;
  readonly address: string;
  onconnection: ((conn: Conn) => void) | null = null;
  /**
   * Called with the error of each failed handshake: TS_ERR_FRAME_MALFORMED or
   * TS_ERR_FRAME_TOO_LARGE for bad signalling, TS_ERR_CONNECT_FAILED for the rest.
   */
  onerror: ((err: TabshardError) => void) | null = null;
  private readonly handshakes = new Set<Conn>();
  /** Connections handed out (closed ones are pruned at each new connection). */
  private readonly established = new Set<Conn>();

  constructor(private readonly opts: WebRtcListenerOptions) {
    this.address = `webrtc+${opts.signalling.address}`;
    opts.signalling.onconnection = (sig) => this.accept(sig);
  }

  /** Stops accepting, abandons handshakes in progress and closes the connections it accepted. */
  async close(): Promise<void> {
    this.opts.signalling.onconnection = null;
    for (const sig of [...this.handshakes]) sig.close();
    for (const conn of [...this.established]) conn.close();
    this.established.clear();
    await this.opts.signalling.close();
  }

  private accept(sig: Conn): void {
    this.handshakes.add(sig);
    openPeerConn(sig, false, `webrtc+${sig.remote}`, { ...this.opts, Peer: SimplePeer }).then(
      (conn) => {
        this.handshakes.delete(sig);
        for (const c of this.established) if (c.closed) this.established.delete(c);
        this.established.add(conn);
        if (this.onconnection) this.onconnection(conn);
        else conn.close();
      },
      (err: TabshardError) => {
        this.handshakes.delete(sig);
        this.onerror?.(err);
      },
    );
  }
}
