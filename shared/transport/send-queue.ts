/**
 * The send queue with water marks that message-channel transports share (WebRTC data channels
 * through `ChunkedConn`, WebSockets through `WsConn`): messages are handed to the sink piece by
 * piece while what it buffers is below the high-water mark, then resumed once it falls to the
 * low-water mark — on the sink's buffered-amount-low event when it has one, else polled.
 * A message's `onSent` runs once its last piece was handed over.
 *
 * What the sink buffers is tracked in JavaScript: an upper bound, the last native
 * `bufferedAmount` reading plus the bytes handed over since (the sink can only have drained some
 * of them). Reading `bufferedAmount` is a native call (a thread hop in libwebrtc, ~17 µs in
 * @roamhq/wrtc), so it is read only when that bound reaches the high-water mark, once when a wait
 * begins, and on the poll while waiting; a buffered-amount-low event lowers the bound to the
 * low-water mark without a read.
 */
import { type TabshardError, toTabshardError } from '../errors.ts';

/** Water marks of a send queue; defaults measured with bench/webrtc-raw.ts. */
export interface SendTuning {
  /** Stop handing pieces to the sink while its buffered bytes are at or above this. */
  highWaterMark?: number;
  /** Resume once its `bufferedAmount` is at or below this. */
  lowWaterMark?: number;
  /** Poll interval (ms) when the sink has no buffered-amount-low event. */
  pollMs?: number;
}

/**
 * Defaults. A browser data channel throws "send queue is full" above ~16 MiB buffered; 4 MiB
 * keeps far from it and still fills the channel (bench/webrtc-raw.ts, bench:browser).
 */
export const DEFAULT_SEND_TUNING: Required<SendTuning> = {
  highWaterMark: 4 * 1024 * 1024,
  lowWaterMark: 1024 * 1024,
  pollMs: 1,
};

/** Where pieces go (an RTCDataChannel, a WebSocket). */
export interface SendSink {
  /** Hands one piece over. May throw when the sink died. */
  send(piece: Uint8Array): void;
  /** Bytes handed to `send` and not yet on the wire (may be a costly native read). */
  readonly bufferedAmount: number;
  /** Call `cb` once when `bufferedAmount` falls to `threshold` or below; absent: the queue polls. */
  onceLow?: (threshold: number, cb: () => void) => void;
  /**
   * True when `send` copies the piece's bytes before it returns (RTCDataChannel in Chromium and
   * @roamhq/wrtc): a piece may then be a view of a buffer that is refilled for the next piece.
   * Otherwise the sink owns each piece it is given.
   */
  readonly copiesOnSend?: boolean;
}

/**
 * One queued message, cut into the pieces the sink takes. The queue hands every piece to the
 * sink as soon as `next` returns it, so a piece may be a view of a scratch buffer that the next
 * `next` call (of this or any other message) refills, when the sink copies on send.
 */
export interface Pieces {
  next(): Uint8Array;
  readonly done: boolean;
}

/** A message that travels as one piece. */
export class WholeMessage implements Pieces {
  done = false;
  constructor(private readonly data: Uint8Array) {}
  next(): Uint8Array {
    this.done = true;
    return this.data;
  }
}

interface Pending {
  pieces: Pieces;
  onSent?: () => void;
}

/** Stands in for sent messages at the head of the queue, so their bytes can be collected. */
const DONE: Pending = { pieces: new WholeMessage(new Uint8Array(0)) };

/** Messages queued for one sink, handed over in order, piece by piece, under the water marks. */
export class SendQueue {
  private readonly high: number;
  private readonly low: number;
  private readonly pollMs: number;
  private queue: Pending[] = [];
  private head = 0; // queue[head] is the message being sent; earlier entries are done
  private waiting = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Upper bound on the sink's `bufferedAmount`: last reading plus bytes handed over since. */
  private buffered = 0;

  /** `onerror` runs when the sink throws; the owner closes its connection. */
  constructor(
    private readonly sink: SendSink,
    tuning: SendTuning,
    private readonly onerror: (err: TabshardError) => void,
  ) {
    this.high = tuning.highWaterMark ?? DEFAULT_SEND_TUNING.highWaterMark;
    this.low = tuning.lowWaterMark ?? DEFAULT_SEND_TUNING.lowWaterMark;
    this.pollMs = tuning.pollMs ?? DEFAULT_SEND_TUNING.pollMs;
  }

  /** Queues one message; an idle queue hands it over at once, as far as the water marks allow. */
  push(pieces: Pieces, onSent?: () => void): void {
    if (this.stopped) return;
    if (this.waiting || this.head < this.queue.length) {
      this.queue.push({ pieces, onSent });
      return;
    }
    // Idle (pump only returns with the queue empty or waiting): no queue entry unless it blocks.
    try {
      if (this.feed(pieces)) {
        if (onSent) queueMicrotask(onSent);
        return;
      }
    } catch (err) {
      this.onerror(toTabshardError(err, 'TS_ERR_TRANSPORT_CLOSED'));
      return;
    }
    if (this.stopped) return;
    this.queue.push({ pieces, onSent });
    this.wait();
  }

  /** Drops what is queued and stops for good (the connection closed). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Hands `pieces` to the sink until the message is done (true) or the high-water mark is
   * reached (false). Reads the native `bufferedAmount` only when the bound says it may be reached.
   */
  private feed(pieces: Pieces): boolean {
    const sink = this.sink;
    while (!this.stopped) {
      if (this.buffered >= this.high) {
        this.buffered = sink.bufferedAmount;
        if (this.buffered >= this.high) return false;
      }
      const piece = pieces.next();
      sink.send(piece);
      this.buffered += piece.byteLength;
      if (pieces.done) return true;
    }
    return false;
  }

  /** Hands queued messages to the sink until the queue is empty or the high-water mark is reached. */
  private readonly pump = (): void => {
    this.waiting = false;
    this.timer = null;
    const queue = this.queue;
    if (this.head > 1024) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    try {
      while (this.head < queue.length && !this.stopped) {
        const msg = queue[this.head];
        if (!this.feed(msg.pieces)) {
          if (!this.stopped) this.wait();
          return;
        }
        queue[this.head++] = DONE;
        if (msg.onSent) queueMicrotask(msg.onSent);
      }
      queue.length = 0;
      this.head = 0;
    } catch (err) {
      this.onerror(toTabshardError(err, 'TS_ERR_TRANSPORT_CLOSED'));
    }
  };

  /** Waits for the sink to drain to the low-water mark (called with `buffered` just read). */
  private wait(): void {
    this.waiting = true;
    const low = this.low;
    if (this.sink.onceLow) {
      this.sink.onceLow(low, () => {
        if (!this.waiting || this.stopped) return;
        // The event says the sink is at or below `low`, and nothing was sent while waiting.
        if (this.buffered > low) this.buffered = low;
        this.pump();
      });
      // The event fires on a crossing only: if it happened before the listener was in place
      // (a sink whose amount drains off the JS thread), go on at once.
      const now = this.sink.bufferedAmount;
      if (now <= low) {
        this.buffered = now;
        queueMicrotask(() => this.waiting && !this.stopped && this.pump());
      }
      return;
    }
    const poll = (): void => {
      if (this.stopped) return;
      const now = this.sink.bufferedAmount;
      if (now <= low) {
        this.buffered = now;
        this.pump();
      } else this.timer = setTimeout(poll, this.pollMs);
    };
    this.timer = setTimeout(poll, this.pollMs);
  }
}
