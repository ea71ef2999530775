/**
 * The dialing (initiator) side of the WebRTC transport, for workers: dials a signalling
 * address with any `Dialer` (TCP, WebSocket, memory), runs simple-peer as initiator over it
 * and resolves with a `Conn` over the data channel once it opens. Runs in Node (pass `wrtc`,
 * e.g. `@roamhq/wrtc`) and in the browser (omit it). The handshake, the signalling format and
 * the chunked `Conn` are shared with the listener: see `shared/transport/webrtc-peer.ts`.
 *
 * Address: `webrtc+<signalling address>` (e.g. `webrtc+tcp://127.0.0.1:1234`, what
 * `WebRtcListener.address` reports) or the bare signalling address.
 */
import SimplePeer from 'simple-peer';
import type { ChunkTuning } from '../../shared/transport/chunked-conn.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';
import { dialPeer } from '../../shared/transport/webrtc-peer.ts';

/** A WebRTC implementation for simple-peer (`@roamhq/wrtc` in Node; omit in the browser). */
export type WrtcImpl = NonNullable<SimplePeer.Options['wrtc']>;

export interface WebRtcDialerOptions extends ChunkTuning {
  /** Carries the handshake to the listener's signalling address. */
  signalling: Dialer;
  wrtc?: WrtcImpl;
  /** RTCPeerConnection configuration; default `{ iceServers: [] }` (host candidates only). */
  config?: RTCConfiguration;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** `dial` rejects with TS_ERR_CONNECT_FAILED when the channel is not open by then (default 10 000 ms). */
  timeoutMs?: number;
  /** Use relayed (TURN) candidates only, as a peer whose network lets nothing else through would. */
  relayOnly?: boolean;
  /**
   * Fresh ICE servers (the cluster info's `iceServers` asked again), called before a dial when
   * the TURN credentials in use expire within a minute: a tab open for hours redials with valid ones.
   */
  refreshIce?: () => Promise<RTCIceServer[] | undefined>;
}

/** Whether a TURN REST username (`<expiry, Unix s>:<user>`) among `servers` expires by `t` (Unix s). */
function expiring(servers: readonly RTCIceServer[], t: number): boolean {
  return servers.some(
    (s) => typeof s.username === 'string' && /^\d+:/.test(s.username) && Number.parseInt(s.username, 10) <= t,
  );
}

/** Opens WebRTC data-channel connections, handshaking over `opts.signalling`. */
export class WebRtcDialer implements Dialer {
  readonly kind = 'webrtc' as const;

  private iceServers: RTCIceServer[] | null = null;

  constructor(private readonly opts: WebRtcDialerOptions) {}

  /** Handshakes from now on use `servers` (a cluster info's `iceServers`: STUN, TURN with fresh credentials). */
  useIceServers(servers: RTCIceServer[]): void {
    this.iceServers = servers;
  }

  /** Resolves once the data channel is open; rejects with TS_ERR_CONNECT_FAILED. */
  async dial(address: string): Promise<Conn> {
    if (this.iceServers && this.opts.refreshIce && expiring(this.iceServers, Date.now() / 1000 + 60)) {
      const fresh = await this.opts.refreshIce().catch(() => undefined);
      if (fresh) this.iceServers = fresh;
    }
    const base = this.opts.config ?? {};
    const config: RTCConfiguration = {
      ...base,
      iceServers: this.iceServers ?? base.iceServers ?? [],
      ...(this.opts.relayOnly ? { iceTransportPolicy: 'relay' as const } : {}),
    };
    return dialPeer(this.opts.signalling, address, { ...this.opts, config, Peer: SimplePeer });
  }
}
