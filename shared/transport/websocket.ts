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
import { SendQueue, type SendTuning, WholeMessage } from './send-queue.ts';
import { type Conn, checkMessageSize, concatParts, DEFAULT_MAX_MESSAGE, type TransportKind } from './types.ts';

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

/** Send-queue tuning (shared with the WebRTC transport; a WebSocket has no low event, so it polls). */
export type WsTuning = SendTuning;

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
  private readonly sendq: SendQueue;
  private isClosed = false;

  constructor(
    private readonly ws: WebSocketLike,
    opts: WsConnOptions,
  ) {
    this.kind = opts.kind ?? 'ws';
    this.remote = opts.remote;
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
    // The sink is given without onceLow: a WebSocket has no buffered-amount-low event.
    this.sendq = new SendQueue(
      {
        send: (d) => ws.send(d),
        get bufferedAmount() {
          return ws.bufferedAmount;
        },
      },
      opts,
      (err) => this.close(err),
    );
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
    checkMessageSize(parts, this.maxMessage);
    if (this.isClosed) return;
    // A WebSocket cannot gather: the parts are copied once, so the caller's buffers are free at once.
    this.sendq.push(new WholeMessage(concatParts(parts)), onSent);
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
    this.sendq.stop();
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
}
