/**
 * The WebSocket transport's `Conn`: one tabshard message is one binary WebSocket message. Works
 * over any WHATWG-like WebSocket (the browser's, or the `ws` package in Node) described by the
 * structural `WebSocketLike`, so shared/ imports no WebSocket implementation.
 *
 * Sends are queued and handed to the socket while its `bufferedAmount` is below a high-water
 * mark, then resumed once it falls to the low-water mark (polled: WebSocket has no
 * buffered-amount-low event). A received message above `maxMessage` closes the connection with
 * TS_ERR_FRAME_TOO_LARGE, a text message with TS_ERR_FRAME_MALFORMED.
 *
 * Closing with an error sends close code 4000 whose reason starts with the error code
 * (`TS_ERR_…: detail`, at most 123 bytes); the peer's `onclose` receives a `TabshardError` with
 * that code. A normal close (1000) ends without an error; any other close code is
 * TS_ERR_TRANSPORT_CLOSED.
 */
import { ERRORS, isErrorCode, TabshardError } from '../errors.ts';
import { type Conn, concatParts, DEFAULT_MAX_MESSAGE, partsLength, type TransportKind } from './types.ts';

/** Close code carrying a tabshard error code in its reason. */
export const WS_CLOSE_ERROR = 4000;
/** Longest close reason, in bytes (RFC 6455: 125 bytes of payload minus the 2-byte code). */
export const WS_MAX_REASON = 123;

/** The part of a WHATWG WebSocket this module uses (browser `WebSocket`, `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', fn: () => void): void;
  addEventListener(type: 'message', fn: (ev: { data: unknown }) => void): void;
  addEventListener(type: 'close', fn: (ev: { code: number; reason: string }) => void): void;
}

/** Send-queue tuning; the water marks follow `ChunkedConn`'s defaults. */
export interface WsTuning {
  /** Stop handing messages to the socket while `bufferedAmount` is at or above this. */
  highWaterMark?: number;
  /** Resume once `bufferedAmount` is at or below this. */
  lowWaterMark?: number;
  /** Poll interval (ms) while waiting for the low-water mark. */
  pollMs?: number;
}

export interface WsConnOptions extends WsTuning {
  kind?: TransportKind;
  remote: string;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
}

const OPEN = 1;

/** The close code and reason that carry `err` (1000 and no reason without one). */
export function closeFrameFor(err?: TabshardError): { code: number; reason: string } {
  if (!err) return { code: 1000, reason: '' };
  const bytes = new TextEncoder().encode(err.code === err.message ? err.code : `${err.code}: ${err.message}`);
  let n = Math.min(bytes.byteLength, WS_MAX_REASON);
  while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--; // do not cut a UTF-8 sequence
  return { code: WS_CLOSE_ERROR, reason: new TextDecoder().decode(bytes.subarray(0, n)) };
}

/** The error a received close frame stands for (undefined for a normal close). */
export function errorFromClose(code: number, reason: string): TabshardError | undefined {
  if (code === 1000 || code === 1005) return undefined;
  const m = /^(TS_ERR_[A-Z_]+)(?:: (.*))?$/s.exec(reason);
  if (code === WS_CLOSE_ERROR && m && isErrorCode(m[1])) {
    const prefix = `${ERRORS[m[1]][0]}: `;
    const detail = m[2]?.startsWith(prefix) ? m[2].slice(prefix.length) : m[2];
    return new TabshardError(m[1], detail === ERRORS[m[1]][0] ? undefined : detail);
  }
  return new TabshardError('TS_ERR_TRANSPORT_CLOSED', `websocket closed with ${code}${reason ? ` ${reason}` : ''}`);
}

/** A `Conn` over an open WebSocket. */
export class WsConn implements Conn {
  readonly kind: TransportKind;
  readonly remote: string;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  private readonly maxMessage: number;
  private readonly high: number;
  private readonly low: number;
  private readonly pollMs: number;
  private queue: Array<{ data: Uint8Array; onSent?: () => void }> = [];
  private head = 0;
  private isClosed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ws: WebSocketLike,
    opts: WsConnOptions,
  ) {
    this.kind = opts.kind ?? 'ws';
    this.remote = opts.remote;
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.high = opts.highWaterMark ?? 4 * 1024 * 1024;
    this.low = opts.lowWaterMark ?? 1024 * 1024;
    this.pollMs = opts.pollMs ?? 1;
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (ev) => this.receive(ev.data));
    ws.addEventListener('close', (ev) => this.shut(errorFromClose(ev.code, ev.reason)));
    // An 'error' event is always followed by 'close', which carries the code.
    ws.addEventListener('error', () => {});
    if (ws.readyState > OPEN) queueMicrotask(() => this.shut(new TabshardError('TS_ERR_TRANSPORT_CLOSED', 'closed')));
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
    // A WebSocket cannot gather: the parts are copied once, so the caller's buffers are free at once.
    this.queue.push({ data: concatParts(parts), onSent });
    if (this.timer === null) this.pump();
  }

  close(err?: TabshardError): void {
    if (this.isClosed) return;
    const { code, reason } = closeFrameFor(err);
    try {
      this.ws.close(code, reason);
    } catch {
      // already closing
    }
    this.shut(err);
  }

  private shut(err?: TabshardError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue = [];
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.onclose?.(err);
  }

  private receive(data: unknown): void {
    if (this.isClosed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.close(new TabshardError('TS_ERR_FRAME_MALFORMED', 'text message on a binary connection'));
      return;
    }
    if (data.byteLength > this.maxMessage) {
      this.close(new TabshardError('TS_ERR_FRAME_TOO_LARGE', `${data.byteLength} bytes above ${this.maxMessage}`));
      return;
    }
    this.onmessage?.(new Uint8Array(data));
  }

  /** Hands queued messages to the socket until the queue is empty or the high-water mark is reached. */
  private readonly pump = (): void => {
    this.timer = null;
    try {
      while (this.head < this.queue.length && !this.isClosed) {
        if (this.ws.bufferedAmount >= this.high) {
          this.wait();
          return;
        }
        const m = this.queue[this.head];
        this.queue[this.head++] = { data: EMPTY };
        this.ws.send(m.data);
        if (m.onSent) queueMicrotask(m.onSent);
      }
      this.queue.length = 0;
      this.head = 0;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      this.close(new TabshardError('TS_ERR_TRANSPORT_CLOSED', detail, { cause: err }));
    }
  };

  private wait(): void {
    const poll = (): void => {
      if (this.isClosed) return;
      if (this.ws.bufferedAmount <= this.low) this.pump();
      else this.timer = setTimeout(poll, this.pollMs);
    };
    this.timer = setTimeout(poll, this.pollMs);
  }
}

const EMPTY = new Uint8Array(0);
