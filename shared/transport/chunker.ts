/**
 * The chunk layer: carries messages of any size over a channel whose messages are capped
 * (a WebRTC data channel: 256 KiB here, 64 KiB in some stacks). Also, for want of other files
 * in shared/ (split candidates): `ChunkedConn`, the `Conn` over such a channel with its own send
 * queue and water marks; the signalling-message codec; and the WebRTC handshake shared by
 * client/ and server/ (`openPeerConn`, `dialPeer`), with simple-peer and the WebRTC stack passed
 * in. Pure logic, no I/O imports: runs in the browser too.
 *
 * ## Chunk layer (byte layout; every channel message is exactly one chunk)
 *
 *     first chunk:        flags:u8 = 0x01 | length:u32 little-endian | payload
 *     continuation chunk: flags:u8 = 0x00 | payload (at least 1 byte)
 *
 * A message of `length` bytes is one first chunk followed by continuation chunks until the
 * payloads add up to `length`; there is no end marker. An empty message is a lone 5-byte first
 * chunk. Chunks of different messages never interleave (the channel is ordered and reliable).
 * A chunk is at most `chunkSize` bytes including its header; senders fill every chunk but the
 * last of a message. Flag bits other than 0x01 are reserved and must be 0. The receiver refuses
 * a `length` above its maximum message before allocating (TS_ERR_FRAME_TOO_LARGE); a first chunk
 * shorter than 5 bytes, a first chunk while a message is incomplete, a continuation with no
 * message open or overrunning `length`, an empty continuation or reserved flags are
 * TS_ERR_FRAME_MALFORMED.
 */

import type SimplePeer from 'simple-peer';
import { TabshardError, toTabshardError } from '../errors.ts';
import { type Conn, DEFAULT_MAX_MESSAGE, type Dialer, partsLength, type TransportKind } from './types.ts';

/** Flag bit of a message's first chunk. */
export const CHUNK_FIRST = 0x01;
/** Header bytes of a first chunk (flags + u32 length) and of a continuation chunk (flags). */
export const FIRST_HEADER = 5;
export const CONT_HEADER = 1;
/** Smallest chunk size accepted (a few payload bytes per chunk). */
export const MIN_CHUNK_SIZE = 16;

/** Number of chunks a message of `length` bytes takes at `chunkSize`. */
export function chunkCount(length: number, chunkSize: number): number {
  const first = chunkSize - FIRST_HEADER;
  return length <= first ? 1 : 1 + Math.ceil((length - first) / (chunkSize - CONT_HEADER));
}

/** Cuts one gathered message into chunks on demand, copying straight from the parts. */
export class MessageChunker {
  readonly length: number;
  private part = 0;
  private offset = 0;
  private emitted = 0;
  private started = false;

  constructor(
    private readonly parts: readonly Uint8Array[],
    private readonly chunkSize: number,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `chunk size ${chunkSize} below ${MIN_CHUNK_SIZE}`);
    }
    this.length = partsLength(parts);
    if (this.length > 0xffffffff) throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', 'above 4 GiB');
  }

  /** True once every chunk has been returned by `next`. */
  get done(): boolean {
    return this.started && this.emitted === this.length;
  }

  /** The next chunk, in a fresh buffer. Call only while `!done`. */
  next(): Uint8Array {
    const head = this.started ? CONT_HEADER : FIRST_HEADER;
    const n = Math.min(this.chunkSize - head, this.length - this.emitted);
    const out = new Uint8Array(head + n);
    if (!this.started) {
      out[0] = CHUNK_FIRST;
      new DataView(out.buffer).setUint32(1, this.length, true);
      this.started = true;
    }
    let w = head;
    while (w < out.length) {
      const p = this.parts[this.part];
      const take = Math.min(p.byteLength - this.offset, out.length - w);
      if (take > 0) out.set(p.subarray(this.offset, this.offset + take), w);
      w += take;
      this.offset += take;
      if (this.offset === p.byteLength) {
        this.part++;
        this.offset = 0;
      }
    }
    this.emitted += n;
    return out;
  }
}

/** All chunks of one message (tests and tools; `ChunkedConn` cuts lazily). */
export function splitMessage(parts: readonly Uint8Array[], chunkSize: number): Uint8Array[] {
  const c = new MessageChunker(parts, chunkSize);
  const out: Uint8Array[] = [];
  do out.push(c.next());
  while (!c.done);
  return out;
}

/** Rebuilds messages from chunks; a message is allocated once, from its first chunk's length. */
export class Reassembler {
  private msg: Uint8Array | null = null;
  private filled = 0;

  constructor(readonly maxMessage: number = DEFAULT_MAX_MESSAGE) {}

  /** True while a message has started and not completed. */
  get pending(): boolean {
    return this.msg !== null;
  }

  /**
   * Feeds the next chunk; returns the completed message or null. A message that fits in its
   * first chunk is returned as a view of that chunk (no copy), so pass chunks you own.
   * Throws only TabshardError (codes in the header); the reassembler then starts afresh.
   */
  push(chunk: Uint8Array): Uint8Array | null {
    const flags = chunk.byteLength > 0 ? chunk[0] : -1;
    if (flags === CHUNK_FIRST) {
      if (this.msg) return this.fail('first chunk while a message is incomplete');
      if (chunk.byteLength < FIRST_HEADER) return this.fail('first chunk shorter than its header');
      const length = new DataView(chunk.buffer, chunk.byteOffset, FIRST_HEADER).getUint32(1, true);
      if (length > this.maxMessage) {
        throw new TabshardError('TS_ERR_FRAME_TOO_LARGE', `message of ${length} bytes above ${this.maxMessage}`);
      }
      const payload = chunk.byteLength - FIRST_HEADER;
      if (payload > length) return this.fail('first chunk overruns the message length');
      if (payload === length) return new Uint8Array(chunk.buffer, chunk.byteOffset + FIRST_HEADER, length);
      this.msg = new Uint8Array(length);
      this.msg.set(chunk.subarray(FIRST_HEADER));
      this.filled = payload;
      return null;
    }
    if (flags !== 0) return this.fail(flags < 0 ? 'empty chunk' : `reserved chunk flags 0x${flags.toString(16)}`);
    const msg = this.msg;
    if (!msg) return this.fail('continuation chunk with no message open');
    const n = chunk.byteLength - CONT_HEADER;
    if (n === 0) return this.fail('empty continuation chunk');
    if (this.filled + n > msg.byteLength) return this.fail('continuation chunk overruns the message length');
    msg.set(chunk.subarray(CONT_HEADER), this.filled);
    this.filled += n;
    if (this.filled < msg.byteLength) return null;
    this.msg = null;
    return msg;
  }

  private fail(detail: string): never {
    this.msg = null;
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', detail);
  }
}

/** The few things `ChunkedConn` needs from a message channel (e.g. an RTCDataChannel). */
export interface ChunkChannel {
  /** Hands one chunk to the channel, which copies or owns it. May throw when the channel died. */
  send(chunk: Uint8Array): void;
  /** Bytes handed to `send` and not yet on the wire. */
  readonly bufferedAmount: number;
  /**
   * Set when the channel fires a buffered-amount-low event: call `cb` once when
   * `bufferedAmount` falls to `threshold` or below. Without it `ChunkedConn` polls.
   */
  onceLow?: (threshold: number, cb: () => void) => void;
  /** Releases the channel (and whatever carries it); `err` is why, if by an error. Idempotent. */
  close(err?: TabshardError): void;
}

/** Send-queue tuning of a chunked connection; defaults measured with bench/webrtc-raw.ts. */
export interface ChunkTuning {
  /** Largest chunk in bytes including the header; capped by the channel's maximum message. */
  chunkSize?: number;
  /** Stop handing chunks to the channel while `bufferedAmount` is at or above this. */
  highWaterMark?: number;
  /** Resume once `bufferedAmount` is at or below this. */
  lowWaterMark?: number;
  /** Poll interval (ms) when the channel has no buffered-amount-low event. */
  pollMs?: number;
}

export const DEFAULT_TUNING: Required<ChunkTuning> = {
  chunkSize: 256 * 1024,
  highWaterMark: 4 * 1024 * 1024,
  lowWaterMark: 1024 * 1024,
  pollMs: 1,
};

export interface ChunkedConnOptions extends ChunkTuning {
  kind: TransportKind;
  remote: string;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
}

type Timer = ReturnType<typeof setTimeout>;

interface Pending {
  chunker: MessageChunker;
  onSent?: () => void;
}

/** Stands in for sent messages at the head of the queue, so their parts can be collected. */
const DONE: Pending = { chunker: new MessageChunker([], MIN_CHUNK_SIZE) };

/**
 * A `Conn` over a `ChunkChannel`. The owner feeds received channel messages to `receive` and
 * reports the channel's end with `ended`; `close` releases the channel through `channel.close`.
 */
export class ChunkedConn implements Conn {
  readonly kind: TransportKind;
  readonly remote: string;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  private readonly tuning: Required<ChunkTuning>;
  private readonly maxMessage: number;
  private readonly reassembler: Reassembler;
  private queue: Pending[] = [];
  private head = 0; // queue[head] is the message being cut; earlier entries are done
  private isClosed = false;
  private waiting = false;
  private timer: Timer | null = null;

  constructor(
    private readonly channel: ChunkChannel,
    opts: ChunkedConnOptions,
  ) {
    this.kind = opts.kind;
    this.remote = opts.remote;
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.tuning = { ...DEFAULT_TUNING, ...stripUndefined(opts) };
    this.reassembler = new Reassembler(this.maxMessage);
    new MessageChunker([], this.tuning.chunkSize); // validates the chunk size up front
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    const length = partsLength(parts);
    if (length > this.maxMessage) {
      throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', `${length} bytes above ${this.maxMessage}`);
    }
    if (this.isClosed) return;
    this.queue.push({ chunker: new MessageChunker(parts, this.tuning.chunkSize), onSent });
    if (!this.waiting) this.pump();
  }

  /** Feeds one message received from the channel. */
  receive(chunk: Uint8Array): void {
    if (this.isClosed) return;
    let msg: Uint8Array | null;
    try {
      msg = this.reassembler.push(chunk);
    } catch (err) {
      this.close(toTabshardError(err, 'TS_ERR_FRAME_MALFORMED'));
      return;
    }
    if (msg) this.onmessage?.(msg);
  }

  /** The channel ended (closed by the peer or failed). */
  ended(err?: TabshardError): void {
    this.close(err ?? new TabshardError('TS_ERR_TRANSPORT_CLOSED', 'closed by peer'));
  }

  close(err?: TabshardError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue = [];
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.channel.close(err);
    this.onclose?.(err);
  }

  /** Hands chunks to the channel until the queue is empty or the high-water mark is reached. */
  private readonly pump = (): void => {
    this.waiting = false;
    this.timer = null;
    const { channel, queue } = this;
    const high = this.tuning.highWaterMark;
    if (this.head > 1024) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    try {
      while (this.head < queue.length && !this.isClosed) {
        if (channel.bufferedAmount >= high) {
          this.wait();
          return;
        }
        const msg = queue[this.head];
        channel.send(msg.chunker.next());
        if (msg.chunker.done) {
          queue[this.head++] = DONE;
          if (msg.onSent) queueMicrotask(msg.onSent);
        }
      }
      queue.length = 0;
      this.head = 0;
    } catch (err) {
      this.close(toTabshardError(err, 'TS_ERR_TRANSPORT_CLOSED'));
    }
  };

  private wait(): void {
    this.waiting = true;
    const low = this.tuning.lowWaterMark;
    if (this.channel.onceLow) {
      this.channel.onceLow(low, () => {
        if (this.waiting && !this.isClosed) this.pump();
      });
      // The event fires on a crossing only; if it already happened, go on at once.
      if (this.channel.bufferedAmount <= low) queueMicrotask(() => this.waiting && this.pump());
      return;
    }
    const poll = (): void => {
      if (this.isClosed) return;
      if (this.channel.bufferedAmount <= low) this.pump();
      else this.timer = setTimeout(poll, this.tuning.pollMs);
    };
    this.timer = setTimeout(poll, this.tuning.pollMs);
  }
}

function stripUndefined(t: ChunkTuning): ChunkTuning {
  const out: ChunkTuning = {};
  for (const k of ['chunkSize', 'highWaterMark', 'lowWaterMark', 'pollMs'] as const) {
    if (t[k] !== undefined) out[k] = t[k];
  }
  return out;
}

/**
 * Signalling messages (WebRTC offer/answer/candidates as simple-peer emits them, or an error
 * sent before closing): one UTF-8 JSON object per message of the signalling transport.
 */
export type SignalMessage =
  | { type: 'offer' | 'answer'; sdp: string }
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
  /** RTCPeerConnection configuration; default `{ iceServers: [] }` (host candidates only). */
  config?: RTCConfiguration;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** Handshake deadline in ms (default 10 000). */
  timeoutMs?: number;
}

/**
 * Runs one WebRTC handshake over the signalling connection `sig` and resolves with a `Conn`
 * over the data channel once it opens; `sig` then stays open for the life of the `Conn`
 * (losing either ends both). On failure it sends an error signal, closes `sig` with the error,
 * destroys the peer and rejects: TS_ERR_FRAME_MALFORMED / TS_ERR_FRAME_TOO_LARGE for bad
 * signalling, TS_ERR_CONNECT_FAILED otherwise.
 */
export function openPeerConn(sig: Conn, initiator: boolean, remote: string, opts: PeerConnOptions): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let done = false;
    let peer: SimplePeer.Instance;
    try {
      peer = new opts.Peer({ initiator, wrtc: opts.wrtc, config: opts.config ?? { iceServers: [] } });
    } catch (err) {
      const e = new TabshardError('TS_ERR_CONNECT_FAILED', `${remote}: no WebRTC`, { cause: err });
      sig.close(e);
      return reject(e);
    }
    // HACK: simple-peer never clears its 5 s ICE-complete timer on destroy; it would keep the
    // process (a test, a short-lived tool) alive after every connection has closed.
    peer.once('close', () => clearTimeout((peer as unknown as { _iceCompleteTimer: Timer })._iceCompleteTimer));
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
    sig.onmessage = (bytes) => {
      try {
        const msg = decodeSignal(bytes);
        if (msg.type === 'error') failed(`other end gave up: ${msg.code} ${msg.message}`);
        else peer.signal(msg as SimplePeer.SignalData);
      } catch (err) {
        fail(toTabshardError(err, 'TS_ERR_FRAME_MALFORMED'));
      }
    };
    peer.on('connect', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(connOverPeer(peer, sig, opts, remote));
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

/** Wraps a connected simple-peer and its signalling connection into a `Conn`. */
function connOverPeer(peer: SimplePeer.Instance, sig: Conn, opts: PeerConnOptions, remote: string): Conn {
  // HACK: simple-peer keeps the RTCDataChannel and RTCPeerConnection private; we need the
  // negotiated maximum message size and the buffered-amount-low event, which it does not expose.
  const raw = peer as unknown as { _channel: RTCDataChannel; _pc: RTCPeerConnection };
  const channel = raw._channel;
  const chunkLimit = Math.min(MAX_CHUNK, raw._pc.sctp?.maxMessageSize || MAX_CHUNK);
  // @roamhq/wrtc has neither bufferedAmountLowThreshold nor the event: ChunkedConn then polls.
  const evented = typeof channel.bufferedAmountLowThreshold === 'number';
  const conn = new ChunkedConn(
    {
      // peer.send, not the Duplex write path: that waits for a buffered-amount-low event and
      // falls back to a 150 ms poll without it.
      send: (chunk) => peer.send(chunk),
      get bufferedAmount() {
        return peer.bufferSize;
      },
      onceLow: evented
        ? (threshold, cb) => {
            channel.bufferedAmountLowThreshold = threshold;
            channel.addEventListener('bufferedamountlow', cb, { once: true });
          }
        : undefined,
      close: (err) => {
        peer.destroy();
        sig.close(err);
      },
    },
    { ...opts, kind: 'webrtc', remote, chunkSize: Math.min(opts.chunkSize ?? DEFAULT_TUNING.chunkSize, chunkLimit) },
  );
  peer.on('data', (data: unknown) => {
    if (data instanceof Uint8Array) conn.receive(data);
    else conn.close(new TabshardError('TS_ERR_FRAME_MALFORMED', 'text message on the data channel'));
  });
  peer.on('close', () => conn.ended());
  peer.on('error', (err) => conn.ended(new TabshardError('TS_ERR_TRANSPORT_CLOSED', err.message, { cause: err })));
  sig.onclose = (err) => conn.ended(err);
  sig.onmessage = (bytes) => {
    try {
      const msg = decodeSignal(bytes);
      if (msg.type === 'error') conn.close(new TabshardError('TS_ERR_TRANSPORT_CLOSED', `${msg.code} ${msg.message}`));
      else peer.signal(msg as SimplePeer.SignalData);
    } catch (err) {
      conn.close(toTabshardError(err, 'TS_ERR_FRAME_MALFORMED'));
    }
  };
  return conn;
}
