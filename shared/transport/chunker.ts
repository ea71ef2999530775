/**
 * The chunk layer: carries messages of any size over a channel whose messages are capped
 * (a WebRTC data channel: 256 KiB here, 64 KiB in some stacks). The `Conn` over such a channel
 * is in `chunked-conn.ts`; the WebRTC handshake in `webrtc-peer.ts`. Pure logic, no I/O imports.
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

import { TabshardError } from '../errors.ts';
import { DEFAULT_MAX_MESSAGE, partsLength } from './types.ts';

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

let scratch = new Uint8Array(0);

/**
 * The process-wide buffer chunks are cut into for sinks that copy on send (at least `size`
 * bytes). One is enough for every connection: a chunk is handed to its sink synchronously right
 * after it is cut, and nothing else runs in between.
 */
export function chunkScratch(size: number): Uint8Array {
  if (scratch.byteLength < size) scratch = new Uint8Array(size);
  return scratch;
}

/** Cuts one gathered message into chunks on demand, copying straight from the parts. */
export class MessageChunker {
  readonly length: number;
  private part = 0;
  private offset = 0;
  private emitted = 0;
  private started = false;

  /**
   * With `scratch` (at least `chunkSize` bytes) every chunk is a view of it, valid until the
   * next `next` call that uses it; without, each chunk is a fresh buffer the caller owns.
   */
  constructor(
    private readonly parts: readonly Uint8Array[],
    private readonly chunkSize: number,
    private readonly scratch?: Uint8Array,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `chunk size ${chunkSize} below ${MIN_CHUNK_SIZE}`);
    }
    if (scratch && scratch.byteLength < chunkSize) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `scratch of ${scratch.byteLength} bytes below ${chunkSize}`);
    }
    this.length = partsLength(parts);
    if (this.length > 0xffffffff) throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', 'above 4 GiB');
  }

  /** True once every chunk has been returned by `next`. */
  get done(): boolean {
    return this.started && this.emitted === this.length;
  }

  /** The next chunk (a view of the scratch buffer, or a fresh one). Call only while `!done`. */
  next(): Uint8Array {
    const head = this.started ? CONT_HEADER : FIRST_HEADER;
    const n = Math.min(this.chunkSize - head, this.length - this.emitted);
    const size = head + n;
    const s = this.scratch;
    const out = s ? (s.byteLength === size ? s : s.subarray(0, size)) : new Uint8Array(size);
    if (this.started) out[0] = 0;
    else {
      const len = this.length;
      out[0] = CHUNK_FIRST;
      out[1] = len & 0xff;
      out[2] = (len >>> 8) & 0xff;
      out[3] = (len >>> 16) & 0xff;
      out[4] = len >>> 24;
      this.started = true;
    }
    let w = head;
    while (w < size) {
      const p = this.parts[this.part];
      const take = Math.min(p.byteLength - this.offset, size - w);
      if (take > 0) out.set(take === p.byteLength ? p : p.subarray(this.offset, this.offset + take), w);
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

/**
 * Largest reassembly buffer a `Reassembler` keeps for the next message of a transient receiver;
 * a larger message gets a buffer of its own, dropped with it.
 */
export const REUSE_MAX = 16 * 1024 * 1024;
const REUSE_STEP = 64 * 1024;

/**
 * Rebuilds messages from chunks; a message is allocated once, from its first chunk's length.
 * For a transient receiver (done with each message when its callback returns) a multi-chunk
 * message is rebuilt in a buffer kept for the next one: grown as needed (at least doubling, in
 * 64 KiB steps, so slowly growing sizes do not reallocate every time), never above REUSE_MAX.
 */
export class Reassembler {
  private msg: Uint8Array | null = null;
  private filled = 0;
  /** The buffer kept for transient receivers, and whether `msg` is a view of it. */
  private spare: Uint8Array | null = null;
  private inSpare = false;

  constructor(readonly maxMessage: number = DEFAULT_MAX_MESSAGE) {}

  /** True while a message has started and not completed. */
  get pending(): boolean {
    return this.msg !== null;
  }

  /** Bytes held for reuse (0 when none). */
  get retained(): number {
    return this.spare?.byteLength ?? 0;
  }

  /**
   * Feeds the next chunk; returns the completed message or null. A message that fits in its
   * first chunk is returned as a view of that chunk (no copy), so pass chunks you own. With
   * `transient` (the receiver is done with the message when its callback returns) a longer
   * message may be a view of a buffer that later messages overwrite; without, it is a fresh
   * buffer. Throws only TabshardError (codes in the header); the reassembler then starts afresh.
   */
  push(chunk: Uint8Array, transient = false): Uint8Array | null {
    const flags = chunk.byteLength > 0 ? chunk[0] : -1;
    if (flags === CHUNK_FIRST) {
      if (this.msg) return this.fail('first chunk while a message is incomplete');
      if (chunk.byteLength < FIRST_HEADER) return this.fail('first chunk shorter than its header');
      const length = (chunk[1] | (chunk[2] << 8) | (chunk[3] << 16) | (chunk[4] << 24)) >>> 0;
      if (length > this.maxMessage) {
        throw new TabshardError('TS_ERR_FRAME_TOO_LARGE', `message of ${length} bytes above ${this.maxMessage}`);
      }
      const payload = chunk.byteLength - FIRST_HEADER;
      if (payload > length) return this.fail('first chunk overruns the message length');
      if (payload === length) return new Uint8Array(chunk.buffer, chunk.byteOffset + FIRST_HEADER, length);
      this.msg = this.buffer(length, transient);
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
    // A receiver that stopped being transient while the message came in keeps the buffer.
    if (this.inSpare && !transient) this.spare = null;
    return msg;
  }

  /** Drops the kept buffer (the connection closed). */
  release(): void {
    this.spare = null;
    this.msg = null;
    this.inSpare = false;
  }

  /** The buffer for a message of `length` bytes: the kept one (grown) when transient, else fresh. */
  private buffer(length: number, transient: boolean): Uint8Array {
    this.inSpare = transient && length <= REUSE_MAX;
    if (!this.inSpare) {
      if (!transient) this.spare = null;
      return new Uint8Array(length);
    }
    let s = this.spare;
    if (!s || s.byteLength < length) {
      const grown = Math.max(Math.ceil(length / REUSE_STEP) * REUSE_STEP, 2 * (s?.byteLength ?? 0));
      s = this.spare = new Uint8Array(Math.min(REUSE_MAX, grown));
    }
    return s.byteLength === length ? s : s.subarray(0, length);
  }

  private fail(detail: string): never {
    this.msg = null;
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', detail);
  }
}
