/**
 * `ChunkedConn`: the `Conn` over a message channel with capped messages (a WebRTC data channel),
 * cutting messages into chunks (`chunker.ts`) behind its own send queue and water marks
 * (`send-queue.ts`: buffered bytes counted in JS, the channel's buffered-amount-low event or a
 * polled `bufferedAmount`). Chunks are cut into one reused buffer when the channel copies on
 * send, and multi-chunk messages are rebuilt into a reused buffer when the receiver sets
 * `transientMessages`. Pure logic: runs in the browser too.
 */
import { TabshardError, toTabshardError } from '../errors.ts';
import { chunkScratch, MessageChunker, Reassembler } from './chunker.ts';
import { DEFAULT_SEND_TUNING, SendQueue, type SendSink, type SendTuning } from './send-queue.ts';
import { type Conn, type ConnRoute, checkMessageSize, DEFAULT_MAX_MESSAGE, type TransportKind } from './types.ts';

/** The few things `ChunkedConn` needs from a message channel (e.g. an RTCDataChannel). */
export interface ChunkChannel extends SendSink {
  /** Releases the channel (and whatever carries it); `err` is why, if by an error. Idempotent. */
  close(err?: TabshardError): void;
}

/** Tuning of a chunked connection: chunk size and the send queue's water marks. */
export interface ChunkTuning extends SendTuning {
  /** Largest chunk in bytes including the header; capped by the channel's maximum message. */
  chunkSize?: number;
}

/**
 * Defaults: 256 KiB chunks (the largest data-channel message sent; WebRTC stacks negotiate
 * 256 KiB, and the WebRTC transport caps it by the negotiated SCTP maximum) and the send queue's.
 */
export const DEFAULT_TUNING: Required<ChunkTuning> = { chunkSize: 256 * 1024, ...DEFAULT_SEND_TUNING };

export interface ChunkedConnOptions extends ChunkTuning {
  kind: TransportKind;
  remote: string;
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
}

/**
 * A `Conn` over a `ChunkChannel`. The owner feeds received channel messages to `receive` and
 * reports the channel's end with `ended`; `close` releases the channel through `channel.close`.
 */
export class ChunkedConn implements Conn {
  readonly kind: TransportKind;
  readonly remote: string;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  transientMessages = false;
  /** Set by the transport that knows it (WebRTC: shared/transport/webrtc-peer.ts). */
  route?: () => Promise<ConnRoute | null>;
  private readonly chunkSize: number;
  private readonly copies: boolean;
  private readonly maxMessage: number;
  private readonly reassembler: Reassembler;
  private readonly sendq: SendQueue;
  private isClosed = false;

  constructor(
    private readonly channel: ChunkChannel,
    opts: ChunkedConnOptions,
  ) {
    this.kind = opts.kind;
    this.remote = opts.remote;
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.chunkSize = opts.chunkSize ?? DEFAULT_TUNING.chunkSize;
    this.reassembler = new Reassembler(this.maxMessage);
    new MessageChunker([], this.chunkSize); // validates the chunk size up front
    this.copies = channel.copiesOnSend === true;
    this.sendq = new SendQueue(channel, opts, (err) => this.close(err));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    checkMessageSize(parts, this.maxMessage);
    if (this.isClosed) return;
    const scratch = this.copies ? chunkScratch(this.chunkSize) : undefined;
    this.sendq.push(new MessageChunker(parts, this.chunkSize, scratch), onSent);
  }

  /** Feeds one message received from the channel. */
  receive(chunk: Uint8Array): void {
    if (this.isClosed) return;
    let msg: Uint8Array | null;
    try {
      msg = this.reassembler.push(chunk, this.transientMessages);
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
    this.sendq.stop();
    this.reassembler.release();
    this.channel.close(err);
    this.onclose?.(err);
  }
}
