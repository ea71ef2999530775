/**
 * The transport contract: an ordered, reliable, message-oriented connection.
 *
 * Every implementation (in-memory, TCP, WebRTC data channel, WebSocket) satisfies this interface
 * and runs the shared compliance suite in `shared/transport/compliance.ts`. Messages keep their
 * boundaries and order within one connection; across connections nothing is promised.
 */
import { TabshardError } from '../errors.ts';

export type TransportKind = 'memory' | 'tcp' | 'webrtc' | 'ws';

/** How a WebRTC connection's packets travel: between the peers' own addresses, or through a TURN server. */
export type ConnRoute = 'direct' | 'turn';

/** Largest message any transport accepts by default (a 4 MiB dense range plus headers fits many times). */
export const DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024;

export interface Conn {
  readonly kind: TransportKind;
  /** A human-readable description of the remote end, for logs and the console. */
  readonly remote: string;
  /** True once closed (locally or by the peer); sends are then ignored and `onSent` never runs. */
  readonly closed: boolean;
  /**
   * Sends one message made of `parts` concatenated (gather write: parts are not copied
   * into one buffer first where the transport can avoid it). Never blocks: the transport queues
   * and respects its own backpressure. `onSent` runs once the transport no longer references
   * the parts, so a caller that lent its buffers (zero-copy) may reuse them. Throws
   * TS_ERR_MESSAGE_TOO_LARGE when the message exceeds `maxMessage`.
   */
  send(parts: readonly Uint8Array[], onSent?: () => void): void;
  /**
   * Called once per received message. The receiver owns the bytes, unless it set
   * `transientMessages`: then they are valid only until `onmessage` returns.
   */
  onmessage: ((msg: Uint8Array) => void) | null;
  /**
   * Set by a receiver that is done with each message when `onmessage` returns (default false):
   * the transport may then deliver views of buffers it reuses for later messages, so receiving
   * allocates nothing per message. A receiver that keeps bytes past its callback (or hands them
   * to something that does, like another connection's `send`) must copy them, or leave this unset.
   */
  transientMessages?: boolean;
  /** Called once when the connection ends; `err` is set when it ended by an error. */
  onclose: ((err?: TabshardError) => void) | null;
  /** Closes the connection; the peer's `onclose` runs too. Idempotent. */
  close(err?: TabshardError): void;
  /** WebRTC only: the route of the ICE candidate pair in use (null when the stack does not say). */
  route?: () => Promise<ConnRoute | null>;
}

/** Opens connections to listeners (client side). */
export interface Dialer {
  readonly kind: TransportKind;
  dial(address: string): Promise<Conn>;
}

/** Accepts connections (server side). */
export interface Listener {
  readonly kind: TransportKind;
  /** Where dialers reach this listener (e.g. `tcp://127.0.0.1:40123`). */
  readonly address: string;
  onconnection: ((conn: Conn) => void) | null;
  close(): Promise<void>;
}

/** Total byte length of a gathered message. */
export function partsLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  return n;
}

/** The byte length of a message about to be sent; TS_ERR_MESSAGE_TOO_LARGE above `max` (every transport's `send` check). */
export function checkMessageSize(parts: readonly Uint8Array[], max: number): number {
  const n = partsLength(parts);
  if (n > max) throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', `${n} bytes above ${max}`);
  return n;
}

/** Concatenates parts into one fresh buffer (used where a transport cannot gather). */
export function concatParts(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0].slice();
  const out = new Uint8Array(partsLength(parts));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
