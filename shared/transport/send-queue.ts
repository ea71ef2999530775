/**
 * The send queue with water marks that message-channel transports share (WebRTC data channels
 * through `ChunkedConn`, WebSockets through `WsConn`): messages are handed to the sink piece by
 * piece while its `bufferedAmount` is below the high-water mark, then resumed once it falls to
 * the low-water mark — on the sink's buffered-amount-low event when it has one, else polled.
 * A message's `onSent` runs once its last piece was handed over.
 */
import { type TabshardError, toTabshardError } from '../errors.ts';

/** Water marks of a send queue; defaults measured with bench/webrtc-raw.ts. */
export interface SendTuning {
  /** Stop handing pieces to the sink while `bufferedAmount` is at or above this. */
  highWaterMark?: number;
  /** Resume once `bufferedAmount` is at or below this. */
  lowWaterMark?: number;
  /** Poll interval (ms) when the sink has no buffered-amount-low event. */
  pollMs?: number;
}

export const DEFAULT_SEND_TUNING: Required<SendTuning> = {
  highWaterMark: 4 * 1024 * 1024,
  lowWaterMark: 1024 * 1024,
  pollMs: 1,
};

/** Where pieces go (an RTCDataChannel, a WebSocket). */
export interface SendSink {
  /** Hands one piece over; the sink copies or owns it. May throw when the sink died. */
  send(piece: Uint8Array): void;
  /** Bytes handed to `send` and not yet on the wire. */
  readonly bufferedAmount: number;
  /** Call `cb` once when `bufferedAmount` falls to `threshold` or below; absent: the queue polls. */
  onceLow?: (threshold: number, cb: () => void) => void;
}

/** One queued message, cut into the pieces the sink takes. */
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

export class SendQueue {
  private readonly tuning: Required<SendTuning>;
  private queue: Pending[] = [];
  private head = 0; // queue[head] is the message being sent; earlier entries are done
  private waiting = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `onerror` runs when the sink throws; the owner closes its connection. */
  constructor(
    private readonly sink: SendSink,
    tuning: SendTuning,
    private readonly onerror: (err: TabshardError) => void,
  ) {
    this.tuning = {
      highWaterMark: tuning.highWaterMark ?? DEFAULT_SEND_TUNING.highWaterMark,
      lowWaterMark: tuning.lowWaterMark ?? DEFAULT_SEND_TUNING.lowWaterMark,
      pollMs: tuning.pollMs ?? DEFAULT_SEND_TUNING.pollMs,
    };
  }

  push(pieces: Pieces, onSent?: () => void): void {
    if (this.stopped) return;
    this.queue.push({ pieces, onSent });
    if (!this.waiting) this.pump();
  }

  /** Drops what is queued and stops for good (the connection closed). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Hands pieces to the sink until the queue is empty or the high-water mark is reached. */
  private readonly pump = (): void => {
    this.waiting = false;
    this.timer = null;
    const { sink, queue } = this;
    if (this.head > 1024) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    try {
      while (this.head < queue.length && !this.stopped) {
        if (sink.bufferedAmount >= this.tuning.highWaterMark) {
          this.wait();
          return;
        }
        const msg = queue[this.head];
        sink.send(msg.pieces.next());
        if (msg.pieces.done) {
          queue[this.head++] = DONE;
          if (msg.onSent) queueMicrotask(msg.onSent);
        }
      }
      queue.length = 0;
      this.head = 0;
    } catch (err) {
      this.onerror(toTabshardError(err, 'TS_ERR_TRANSPORT_CLOSED'));
    }
  };

  private wait(): void {
    this.waiting = true;
    const low = this.tuning.lowWaterMark;
    if (this.sink.onceLow) {
      this.sink.onceLow(low, () => {
        if (this.waiting && !this.stopped) this.pump();
      });
      // The event fires on a crossing only; if it already happened, go on at once.
      if (this.sink.bufferedAmount <= low) queueMicrotask(() => this.waiting && this.pump());
      return;
    }
    const poll = (): void => {
      if (this.stopped) return;
      if (this.sink.bufferedAmount <= low) this.pump();
      else this.timer = setTimeout(poll, this.tuning.pollMs);
    };
    this.timer = setTimeout(poll, this.tuning.pollMs);
  }
}
