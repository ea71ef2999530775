/**
 * Message framing over a byte stream (TCP): each message is a u32 little-endian length followed
 * by that many bytes. `streamConn` turns any socket-like byte stream into a `Conn`; it knows the
 * socket only through the small `ByteStream` interface, so shared/ stays free of Node imports.
 *
 * A declared length above `maxMessage` closes the connection with TS_ERR_FRAME_TOO_LARGE before
 * anything is allocated. A message that spans reads is copied into an assembly buffer that grows
 * with what has arrived (to at most 4 × the bytes received, plus 64 KiB), so a peer that claims a
 * large message and then stalls costs only a small multiple of what it sent. For a receiver that
 * set `transientMessages` the assembly buffer is kept for the next message (up to 64 MiB), and a
 * message inside one read is a view of it: receiving then allocates nothing per message.
 *
 * Bytes arrive either as `data` events (chunks Node allocated: the receiver may keep views of
 * them) or, where the socket was built with `onread`, in one reused read buffer (`receive(chunk,
 * false)`: copied before a non-transient receiver sees them).
 */
import { TabshardError } from '../errors.ts';
import { type Conn, checkMessageSize, DEFAULT_MAX_MESSAGE, type Dialer, type TransportKind } from './types.ts';

/** The part of a Node `net.Socket` this module uses. */
export interface ByteStream {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
  on(event: 'data', fn: (chunk: Uint8Array) => void): unknown;
  on(event: 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  destroy(): void;
  end(): void;
}

export class StreamConn implements Conn {
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  private isClosed = false;
  private closeErr: TabshardError | undefined;
  // Reassembly state: `need` bytes of the message (-1: reading a length), `filled` of them in `assembly`.
  private assembly = new Uint8Array(0);
  private filled = 0;
  private need = -1;
  private head = new Uint8Array(4);
  private headFill = 0;

  transientMessages = false;

  /** `dataEvents` false: the owner feeds `receive` itself (a socket read with `onread`). */
  constructor(
    private readonly sock: ByteStream,
    readonly kind: TransportKind,
    readonly remote: string,
    private readonly maxMessage: number,
    dataEvents = true,
  ) {
    if (dataEvents) sock.on('data', (c) => this.receive(c, true));
    sock.on('error', (e) => this.fail(new TabshardError('TS_ERR_TRANSPORT_CLOSED', e.message, { cause: e })));
    sock.on('close', () => this.shut(this.closeErr));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    const len = checkMessageSize(parts, this.maxMessage);
    if (this.isClosed) return;
    if (len <= COPY_SEND_BYTES) {
      // A small message goes as one buffer in one write: cheaper than a gathered write of its parts.
      const msg = new Uint8Array(4 + len);
      writeU32(msg, 0, len);
      for (let i = 0, o = 4; i < parts.length; o += parts[i].byteLength, i++) msg.set(parts[i], o);
      this.sock.write(msg);
      if (onSent) queueMicrotask(onSent); // the parts were copied: the socket holds none of them
      return;
    }
    const prefix = new Uint8Array(4);
    writeU32(prefix, 0, len);
    this.sock.cork();
    this.sock.write(prefix);
    let last = -1;
    for (let i = 0; i < parts.length; i++) if (parts[i].byteLength > 0) last = i;
    if (last < 0) this.sock.write(prefix.subarray(0, 0), onSent && (() => onSent()));
    for (let i = 0; i <= last; i++) this.sock.write(parts[i], i === last && onSent ? () => onSent() : undefined);
    this.sock.uncork();
  }

  close(err?: TabshardError): void {
    if (this.isClosed) return;
    this.closeErr = err;
    this.sock.end();
    this.sock.destroy();
    this.shut(err);
  }

  private fail(err: TabshardError): void {
    this.closeErr ??= err;
    this.close(err);
  }

  private shut(err?: TabshardError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.assembly = new Uint8Array(0);
    this.onclose?.(err);
  }

  /**
   * Feeds bytes read from the socket. `owned`: the chunk is this connection's to keep (a `data`
   * event's); false when it lives in a read buffer that the next read overwrites.
   */
  receive(chunk: Uint8Array, owned: boolean): void {
    let off = 0;
    while (off < chunk.byteLength && !this.isClosed) {
      if (this.need < 0) {
        // Reading the 4-byte length prefix, which may itself be split across chunks.
        if (this.headFill === 0 && chunk.byteLength - off >= 4) {
          this.need = readU32(chunk, off);
          off += 4;
        } else {
          this.head[this.headFill++] = chunk[off++];
          if (this.headFill < 4) continue;
          this.need = readU32(this.head, 0);
          this.headFill = 0;
        }
        if (this.need > this.maxMessage) {
          this.fail(new TabshardError('TS_ERR_FRAME_TOO_LARGE', `peer declared ${this.need} bytes`));
          return;
        }
        this.filled = 0;
        if (this.need === 0) this.deliver(new Uint8Array(0));
        continue;
      }
      const take = Math.min(this.need - this.filled, chunk.byteLength - off);
      if (this.filled === 0 && take === this.need) {
        // The whole message is in this chunk: no copy unless the receiver keeps it and the chunk is reused.
        const view = chunk.subarray(off, off + take);
        off += take;
        this.deliver(owned || this.transientMessages ? plain(view) : new Uint8Array(view));
        continue;
      }
      this.reserve(this.filled + take);
      this.assembly.set(chunk.subarray(off, off + take), this.filled);
      this.filled += take;
      off += take;
      if (this.filled === this.need) {
        const msg = this.assembly.subarray(0, this.need);
        if (!this.transientMessages || this.assembly.byteLength > KEEP_ASSEMBLY) this.assembly = new Uint8Array(0);
        this.deliver(msg);
      }
    }
  }

  /** Grows the assembly buffer to hold `bytes` (at most the message), by at least 4× what has arrived. */
  private reserve(bytes: number): void {
    if (this.assembly.byteLength >= bytes) return;
    const cap = Math.min(this.need, Math.max(bytes * 4, MIN_ASSEMBLY));
    const grown = new Uint8Array(cap);
    grown.set(this.assembly.subarray(0, this.filled));
    this.assembly = grown;
  }

  private deliver(msg: Uint8Array): void {
    this.need = -1;
    this.filled = 0;
    this.onmessage?.(msg);
  }
}

/** First assembly allocation, and the largest one a transient receiver's connection keeps. */
const MIN_ASSEMBLY = 64 * 1024;
const KEEP_ASSEMBLY = 64 * 1024 * 1024;

/** Messages up to this size are copied into one buffer and written at once (see `send`). */
const COPY_SEND_BYTES = 16 * 1024;

function writeU32(b: Uint8Array, off: number, x: number): void {
  b[off] = x;
  b[off + 1] = x >>> 8;
  b[off + 2] = x >>> 16;
  b[off + 3] = x >>> 24;
}

function readU32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** A plain Uint8Array view of `v` (not a Node Buffer, whose slice() does not copy). */
function plain(v: Uint8Array): Uint8Array {
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Node's `onread` socket option: reads land in one reused buffer and are handed to `callback`. */
export interface OnRead {
  buffer: Uint8Array;
  callback: (bytes: number, buf: Uint8Array) => boolean;
}

/** The part of Node's `net.connect` the dialer uses (injected, so shared/ does no I/O itself). */
export type ConnectFn = (opts: { host: string; port: number; noDelay: boolean; onread?: OnRead }) => ByteStream & {
  once(event: 'connect', fn: () => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(event: 'error'): unknown;
};

/** Bytes a dialled connection reads into at a time (one buffer per connection, reused). */
const READ_BUFFER = 256 * 1024;

/** Parses `tcp://host:port` (host defaults to 127.0.0.1). */
export function parseTcpAddress(address: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:/]*):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `bad tcp address ${address}`);
  return { host: m[1] || '127.0.0.1', port };
}

/** A TCP dialer over the given `connect` (Node's `net.connect`). */
export function streamDialer(connect: ConnectFn, opts: { maxMessage?: number; timeoutMs?: number } = {}): Dialer {
  const maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  return {
    kind: 'tcp',
    dial(address: string): Promise<Conn> {
      const { host, port } = parseTcpAddress(address);
      return new Promise((resolve, reject) => {
        // Reads go into one buffer per connection (no allocation per read). Nothing can be read
        // before 'connect', where the connection object is made.
        let conn: StreamConn | null = null;
        const onread: OnRead = {
          buffer: new Uint8Array(READ_BUFFER),
          callback: (bytes, buf) => {
            conn?.receive(buf.subarray(0, bytes), false);
            return true;
          },
        };
        const sock = connect({ host, port, noDelay: true, onread });
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: timed out`));
        }, opts.timeoutMs ?? 10_000);
        sock.once('error', (err) => {
          clearTimeout(timer);
          reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: ${err.message}`, { cause: err }));
        });
        sock.once('connect', () => {
          clearTimeout(timer);
          sock.removeAllListeners('error');
          conn = new StreamConn(sock, 'tcp', address, maxMessage, false);
          resolve(conn);
        });
      });
    },
  };
}
