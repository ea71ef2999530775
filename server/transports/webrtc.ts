/**
 * The accepting side of the WebRTC transport: a `Listener` built over any signalling
 * `Listener` (TCP, WebSocket, memory). Each incoming signalling connection carries one WebRTC
 * handshake (simple-peer signal data as UTF-8 JSON, one object per message); its data channel
 * becomes a `Conn` handed to `onconnection`. The handshake, the signalling format and the
 * chunked `Conn` are shared with the dialer: see `shared/transport/webrtc-peer.ts`.
 *
 * Address: `webrtc+<signalling address>`, e.g. `webrtc+tcp://127.0.0.1:1234`. The signalling
 * connection stays open as long as the data channel; losing either ends the `Conn`.
 *
 * Every peer connection costs the node file descriptors and threads, and anyone who reaches the
 * gateway's signal relay can ask for one: past `maxPeers` live peer connections (handshakes in
 * progress included) or `maxHandshakes` handshakes in progress, a new signalling connection is
 * answered `{"type":"error","code":"TS_ERR_RATE_LIMITED",…}` and closed before any peer is made
 * (PROTOCOL.md §2.2); a browser tab then falls back to the gateway's ws data relay.
 */
import SimplePeer from 'simple-peer';
import { TabshardError } from '../../shared/errors.ts';
import type { ChunkTuning } from '../../shared/transport/chunked-conn.ts';
import type { Conn, Listener } from '../../shared/transport/types.ts';
import { encodeSignal, openPeerConn } from '../../shared/transport/webrtc-peer.ts';

/** Live peer connections a listener keeps at most, handshakes in progress included. */
export const DEFAULT_MAX_PEERS = 128;
/** Handshakes a listener runs at once at most. */
export const DEFAULT_MAX_HANDSHAKES = 32;
/** How long a refused signalling connection stays open for its error signal to arrive. */
const REFUSAL_GRACE_MS = 1000;

/** A WebRTC implementation for simple-peer (`@roamhq/wrtc` in Node). */
export type WrtcImpl = NonNullable<SimplePeer.Options['wrtc']>;

export interface WebRtcListenerOptions extends ChunkTuning {
  /** Where handshakes arrive; the WebRTC listener takes over its `onconnection`. */
  signalling: Listener;
  wrtc?: WrtcImpl;
  /**
   * RTCPeerConnection configuration, or a function giving one per handshake (fresh TURN
   * credentials); default `{ iceServers: [] }` (host candidates only).
   */
  config?: RTCConfiguration | (() => RTCConfiguration);
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** A handshake not done after this many ms is abandoned (default 10 000). */
  timeoutMs?: number;
  /** Live peer connections at most, handshakes in progress included (default DEFAULT_MAX_PEERS). */
  maxPeers?: number;
  /** Handshakes in progress at most (default DEFAULT_MAX_HANDSHAKES). */
  maxHandshakes?: number;
}

/** Accepts WebRTC connections whose handshakes arrive over `opts.signalling`. */
export class WebRtcListener implements Listener {
  readonly kind = 'webrtc' as const;
  readonly address: string;
  onconnection: ((conn: Conn) => void) | null = null;
  /**
   * Called with the error of each failed handshake: TS_ERR_FRAME_MALFORMED or
   * TS_ERR_FRAME_TOO_LARGE for bad signalling, TS_ERR_RATE_LIMITED for one refused at a cap,
   * TS_ERR_CONNECT_FAILED for the rest.
   */
  onerror: ((err: TabshardError) => void) | null = null;
  /** Signalling connections refused so far, by the cap that refused them (for STATS and metrics). */
  readonly refused = { peers: 0, handshakes: 0 };
  private readonly handshakes = new Set<Conn>();
  /** Refused signalling connections waiting for their dialer to hang up. */
  private readonly refusing = new Set<Conn>();
  /** Connections handed out (closed ones are pruned at each new connection). */
  private readonly established = new Set<Conn>();

  constructor(private readonly opts: WebRtcListenerOptions) {
    this.address = `webrtc+${opts.signalling.address}`;
    opts.signalling.onconnection = (sig) => this.accept(sig);
  }

  /** Stops accepting, abandons handshakes in progress and closes the connections it accepted. */
  async close(): Promise<void> {
    this.opts.signalling.onconnection = null;
    for (const sig of [...this.handshakes, ...this.refusing]) sig.close();
    for (const conn of [...this.established]) conn.close();
    this.established.clear();
    await this.opts.signalling.close();
  }

  /**
   * Answers `sig` with an error signal and closes it once the dialer has hung up (it does on the
   * error) or after REFUSAL_GRACE_MS: closing at once could cut the signal off (a reset when the
   * dialer's offer is still unread, a close overtaking the message on some transports).
   */
  private refuse(sig: Conn, err: TabshardError): void {
    this.refusing.add(sig);
    const timer = setTimeout(() => sig.close(err), REFUSAL_GRACE_MS);
    timer.unref?.();
    sig.onmessage = null;
    sig.onclose = () => {
      clearTimeout(timer);
      this.refusing.delete(sig);
    };
    sig.send([encodeSignal({ type: 'error', code: err.code, message: err.message })]);
    this.onerror?.(err);
  }

  /** Live peer connections plus handshakes in progress, and handshakes in progress. */
  get load(): { peers: number; handshakes: number } {
    for (const c of this.established) if (c.closed) this.established.delete(c);
    return { peers: this.established.size + this.handshakes.size, handshakes: this.handshakes.size };
  }

  private accept(sig: Conn): void {
    const { peers, handshakes } = this.load;
    const maxPeers = this.opts.maxPeers ?? DEFAULT_MAX_PEERS;
    const maxHandshakes = this.opts.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
    if (peers >= maxPeers || handshakes >= maxHandshakes) {
      const cap = peers >= maxPeers ? 'peers' : 'handshakes';
      this.refused[cap]++;
      const err = new TabshardError(
        'TS_ERR_RATE_LIMITED',
        cap === 'peers'
          ? `this node has ${maxPeers} peer connections; use the ws relay`
          : `this node runs ${maxHandshakes} handshakes already; retry later`,
      );
      this.refuse(sig, err);
      return;
    }
    this.handshakes.add(sig);
    openPeerConn(sig, false, `webrtc+${sig.remote}`, { ...this.opts, Peer: SimplePeer }).then(
      (conn) => {
        this.handshakes.delete(sig);
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
