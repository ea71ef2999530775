/**
 * `ChunkedConn`: the `Conn` over a message channel with capped messages (a WebRTC data channel),
 * cutting messages into chunks (`chunker.ts`) behind its own send queue and water marks
 * (polled `bufferedAmount`, or the channel's buffered-amount-low event). Pure logic: runs in
 * the browser too.
 */
import { TabshardError, toTabshardError } from '../errors.ts';
import { MessageChunker, MIN_CHUNK_SIZE, Reassembler } from './chunker.ts';
import { type Conn, DEFAULT_MAX_MESSAGE, partsLength, type TransportKind } from './types.ts';

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
