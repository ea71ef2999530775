/**
 * The WebRTC handshake shared by client/ and server/: the signalling-message codec, and
 * `openPeerConn` / `dialPeer`, which run simple-peer (passed in, with the WebRTC stack) over a
 * signalling `Conn` and wrap the data channel into a `ChunkedConn`. Pure logic, no I/O imports:
 * runs in the browser too.
 */
import type SimplePeer from 'simple-peer';
import { TabshardError, toTabshardError } from '../errors.ts';
import { ChunkedConn, type ChunkTuning, DEFAULT_TUNING } from './chunked-conn.ts';
import type { Conn, ConnRoute, Dialer } from './types.ts';
import { guardDescriptions } from './wrtc-guard.ts';

type Timer = ReturnType<typeof setTimeout>;

/**
 * Signalling messages (WebRTC offer/answer/candidates as simple-peer emits them, the
 * listener's `ready` once its end of the data channel is set up, or an error sent before
 * closing): one UTF-8 JSON object per message of the signalling transport.
 */
export type SignalMessage =
  | { type: 'offer' | 'answer'; sdp: string }
  | { type: 'ready' }
  | { type: 'candidate'; candidate: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null } }
  | { type: 'error'; code: string; message: string };

/** Largest signalling message accepted (an SDP is a few KiB). */
export const MAX_SIGNAL_BYTES = 64 * 1024;

/** Encodes one signalling message. */
export function encodeSignal(msg: SignalMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg));
}

/** Decodes one signalling message; throws TS_ERR_FRAME_MALFORMED or TS_ERR_FRAME_TOO_LARGE only. */
export function decodeSignal(bytes: Uint8Array): SignalMessage {
  if (bytes.byteLength > MAX_SIGNAL_BYTES) throw new TabshardError('TS_ERR_FRAME_TOO_LARGE', 'signalling message');
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'signalling message is not UTF-8 JSON');
  }
  const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  const c = (typeof o.candidate === 'object' && o.candidate !== null ? o.candidate : {}) as Record<string, unknown>;
  const ok =
    ((o.type === 'offer' || o.type === 'answer') && typeof o.sdp === 'string') ||
    (o.type === 'candidate' && typeof c.candidate === 'string') ||
    o.type === 'ready' ||
    (o.type === 'error' && typeof o.code === 'string' && typeof o.message === 'string');
  if (!ok) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'not a signalling message');
  return o as SignalMessage;
}

/** The largest data-channel message sent, whatever the negotiated maximum says. */
export const MAX_CHUNK = 256 * 1024;

/** How a WebRTC connection is made; the WebRTC stack is passed in, so this stays pure. */
export interface PeerConnOptions extends ChunkTuning {
  /** The simple-peer constructor. */
  Peer: typeof SimplePeer;
  /** A WebRTC implementation for simple-peer (`@roamhq/wrtc` in Node; omit in the browser). */
  wrtc?: SimplePeer.Options['wrtc'];
  /**
   * RTCPeerConnection configuration, or a function giving one per handshake (fresh TURN
   * credentials); default `{ iceServers: [] }` (host candidates only).
   */
  config?: RTCConfiguration | (() => RTCConfiguration);
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** Handshake deadline in ms (default 10 000). */
  timeoutMs?: number;
}

/**
 * Runs one WebRTC handshake over the signalling connection `sig` and resolves with a `Conn`
 * over the data channel once it opens — for the dialer (`initiator`), once it is open and the
 * listener said `ready` too: @roamhq/wrtc can hand the listener the messages that reach a
 * channel before its JavaScript side is set up in another order than they were sent (seen in
 * about 1 connection in 10 when the dialer sends at once; server/transports/webrtc.test.ts).
 * The listener sends `ready` once its `Conn`'s owner has had its turn to set `onmessage`.
 * `sig` then stays open for the life of the `Conn`
 * (losing either ends both). On failure it sends an error signal, closes `sig` with the error,
 * destroys the peer and rejects: TS_ERR_FRAME_MALFORMED / TS_ERR_FRAME_TOO_LARGE for bad
 * signalling, TS_ERR_CONNECT_FAILED otherwise.
 */
export function openPeerConn(sig: Conn, initiator: boolean, remote: string, opts: PeerConnOptions): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let done = false;
    let peer: SimplePeer.Instance;
    try {
      // A Node implementation is guarded: @roamhq/wrtc can die reading a description (wrtc-guard.ts).
      const wrtc = opts.wrtc && guardDescriptions(opts.wrtc);
      const config = (typeof opts.config === 'function' ? opts.config() : opts.config) ?? { iceServers: [] };
      peer = new opts.Peer({ initiator, wrtc, config });
    } catch (err) {
      const e = new TabshardError('TS_ERR_CONNECT_FAILED', `${remote}: no WebRTC`, { cause: err });
      sig.close(e);
      return reject(e);
    }
    // HACK: simple-peer never clears its 5 s ICE-complete timer on destroy; it would keep the
    // process (a test, a short-lived tool) alive after every connection has closed.
    peer.once('close', () => clearTimeout((peer as unknown as { _iceCompleteTimer: Timer })._iceCompleteTimer));
    const inbox = takeMessages(peer);
    const fail = (err: TabshardError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!sig.closed) sig.send([encodeSignal({ type: 'error', code: err.code, message: err.message })]);
      peer.destroy();
      sig.close(err);
      reject(err);
    };
    const failed = (detail: string, cause?: unknown) =>
      fail(new TabshardError('TS_ERR_CONNECT_FAILED', `${remote}: ${detail}`, { cause }));
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const timer = setTimeout(() => failed(`no data channel after ${timeoutMs} ms`), timeoutMs);
    peer.on('signal', (data) => sig.send([encodeSignal(data as SignalMessage)]));
    peer.on('error', (err) => failed(err.message, err));
    peer.on('close', () => failed('peer closed during the handshake'));
    sig.onclose = (err) => failed('signalling connection closed', err);
    let connected = false;
    let ready = !initiator; // the listener waits for nothing
    const finish = (): void => {
      if (done || !connected || !ready) return;
      done = true;
      clearTimeout(timer);
      resolve(connOverPeer(peer, sig, opts, remote, inbox, !initiator));
    };
    sig.onmessage = (bytes) => {
      try {
        const msg = decodeSignal(bytes);
        if (msg.type === 'error') failed(`other end gave up: ${msg.code} ${msg.message}`);
        else if (msg.type === 'ready') {
          if (!initiator) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'only the listener says ready');
          ready = true;
          finish();
        } else peer.signal(msg as SimplePeer.SignalData);
      } catch (err) {
        fail(toTabshardError(err, 'TS_ERR_FRAME_MALFORMED'));
      }
    };
    peer.on('connect', () => {
      connected = true;
      finish();
    });
  });
}

/**
 * Dials `address` (`webrtc+<signalling address>` or the bare signalling address) with
 * `signalling` and runs the handshake as initiator (see `openPeerConn`); rejects with
 * TS_ERR_CONNECT_FAILED only.
 */
export async function dialPeer(signalling: Dialer, address: string, opts: PeerConnOptions): Promise<Conn> {
  const sigAddress = address.replace(/^webrtc\+/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = Date.now();
  const sig = await new Promise<Conn>((resolve, reject) => {
    let late = false;
    const fail = (detail: string, cause?: unknown) =>
      reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: ${detail}`, { cause }));
    const timer = setTimeout(() => {
      late = true;
      fail(`signalling dial took over ${timeoutMs} ms`);
    }, timeoutMs);
    signalling.dial(sigAddress).then(
      (s) => {
        clearTimeout(timer);
        if (late) s.close();
        else resolve(s);
      },
      (err) => {
        clearTimeout(timer);
        fail('signalling dial failed', err);
      },
    );
  });
  const left = timeoutMs - (Date.now() - started);
  try {
    return await openPeerConn(sig, true, `webrtc+${sigAddress}`, { ...opts, timeoutMs: Math.max(1, left) });
  } catch (err) {
    const e = toTabshardError(err, 'TS_ERR_CONNECT_FAILED');
    throw e.code === 'TS_ERR_CONNECT_FAILED' ? e : new TabshardError('TS_ERR_CONNECT_FAILED', e.message, { cause: e });
  }
}

/** Data-channel messages taken from simple-peer: kept until `deliver` is set, then passed on. */
interface Inbox {
  early: unknown[];
  deliver: ((data: unknown) => void) | null;
}

/**
 * Takes the channel's messages away from simple-peer before any can arrive. simple-peer pushes
 * each one through a Node-style Readable stream (a `Buffer` wrapper and the stream's machinery
 * per message, or the `buffer`/`readable-stream` shims in the browser); the `Conn` wants the
 * bytes, in order, and nothing else.
 */
function takeMessages(peer: SimplePeer.Instance): Inbox {
  const inbox: Inbox = { early: [], deliver: null };
  // HACK: simple-peer's channel `onmessage` calls the instance's `_onChannelMessage(event)`,
  // looked up on every message; an own property shadows the prototype's.
  (peer as unknown as { _onChannelMessage: (ev: MessageEvent) => void })._onChannelMessage = (ev) => {
    if (inbox.deliver) inbox.deliver(ev.data);
    else inbox.early.push(ev.data);
  };
  return inbox;
}

/** Wraps a connected simple-peer and its signalling connection into a `Conn`. */
function connOverPeer(
  peer: SimplePeer.Instance,
  sig: Conn,
  opts: PeerConnOptions,
  remote: string,
  inbox: Inbox,
  listener: boolean,
): Conn {
  // HACK: simple-peer keeps the RTCDataChannel and RTCPeerConnection private; we need the
  // negotiated maximum message size and the buffered-amount-low event, which it does not expose.
  const raw = peer as unknown as { _channel: RTCDataChannel; _pc: RTCPeerConnection };
  const channel = raw._channel;
  const chunkLimit = Math.min(MAX_CHUNK, raw._pc.sctp?.maxMessageSize || MAX_CHUNK);
  // @roamhq/wrtc has neither bufferedAmountLowThreshold nor the event: the send queue then polls.
  const evented = typeof channel.bufferedAmountLowThreshold === 'number';
  const conn = new ChunkedConn(
    {
      // The channel itself, not simple-peer's Duplex write path (that waits for a
      // buffered-amount-low event and falls back to a 150 ms poll without it) nor peer.send.
      send: (chunk) => channel.send(chunk as Uint8Array<ArrayBuffer>),
      get bufferedAmount() {
        return channel.bufferedAmount;
      },
      onceLow: evented
        ? (threshold, cb) => {
            channel.bufferedAmountLowThreshold = threshold;
            channel.addEventListener('bufferedamountlow', cb, { once: true });
          }
        : undefined,
      // RTCDataChannel.send copies the bytes before it returns, in Chromium (blink builds a
      // CopyOnWriteBuffer from the view) and @roamhq/wrtc (same, in RTCDataChannel::Send);
      // tested in server/transports/webrtc.test.ts (wrtc) and e2e/datachannel.test.ts (Chromium).
      copiesOnSend: true,
      close: (err) => {
        peer.destroy();
        sig.close(err);
      },
    },
    { ...opts, kind: 'webrtc', remote, chunkSize: Math.min(opts.chunkSize ?? DEFAULT_TUNING.chunkSize, chunkLimit) },
  );
  const deliver = (data: unknown): void => {
    if (data instanceof ArrayBuffer) conn.receive(new Uint8Array(data));
    else conn.close(new TabshardError('TS_ERR_FRAME_MALFORMED', 'text message on the data channel'));
  };
  // Messages that came before the channel counted as connected (a dialer that did not wait for
  // `ready`) wait until the owner of the `Conn` has had its turn to set `onmessage`; later ones
  // queue behind them. Then the listener says `ready`: the dialer sends nothing before it.
  setTimeout(() => {
    for (const data of inbox.early) deliver(data);
    inbox.early.length = 0;
    inbox.deliver = deliver;
    if (listener && !sig.closed) sig.send([encodeSignal({ type: 'ready' })]);
  }, 0);
  conn.route = () => selectedRoute(raw._pc);
  peer.on('close', () => conn.ended());
  peer.on('error', (err) => conn.ended(new TabshardError('TS_ERR_TRANSPORT_CLOSED', err.message, { cause: err })));
  sig.onclose = (err) => conn.ended(err);
  sig.onmessage = (bytes) => {
    try {
      const msg = decodeSignal(bytes);
      if (msg.type === 'error') conn.close(new TabshardError('TS_ERR_TRANSPORT_CLOSED', `${msg.code} ${msg.message}`));
      else if (msg.type === 'ready') throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'ready said twice');
      else peer.signal(msg as SimplePeer.SignalData);
    } catch (err) {
      conn.close(toTabshardError(err, 'TS_ERR_FRAME_MALFORMED'));
    }
  };
  return conn;
}

/**
 * The route of `pc`'s selected ICE candidate pair: `turn` when either end is a relayed
 * candidate, `direct` otherwise; null when the stack's statistics do not name the pair.
 */
async function selectedRoute(pc: RTCPeerConnection): Promise<ConnRoute | null> {
  interface Stat {
    type: string;
    id: string;
    selectedCandidatePairId?: string;
    nominated?: boolean;
    selected?: boolean;
    state?: string;
    localCandidateId?: string;
    remoteCandidateId?: string;
    candidateType?: string;
  }
  const all = new Map<string, Stat>();
  (await pc.getStats()).forEach((s: Stat) => {
    all.set(s.id, s);
  });
  const stats = [...all.values()];
  const pairId = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId)?.selectedCandidatePairId;
  const pair = stats.find(
    (s) =>
      s.type === 'candidate-pair' &&
      (pairId ? s.id === pairId : s.selected || (s.nominated && s.state === 'succeeded')),
  );
  if (!pair) return null;
  const ends = [pair.localCandidateId, pair.remoteCandidateId].map((id) =>
    id ? all.get(id)?.candidateType : undefined,
  );
  if (ends.every((t) => t === undefined)) return null;
  return ends.includes('relay') ? 'turn' : 'direct';
}
