/**
 * Message framing over a byte stream (TCP): each message is a u32 little-endian length followed
 * by that many bytes. `streamConn` turns any socket-like byte stream into a `Conn`; it knows the
 * socket only through the small `ByteStream` interface, so shared/ stays free of Node imports.
 *
 * A declared length above `maxMessage` closes the connection with TS_ERR_FRAME_TOO_LARGE before
 * anything is allocated; received chunks are kept as they come and joined once the message is
 * complete, so a peer that claims a large message and then stalls costs only what it sent.
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
  // Reassembly state: `need` bytes of body still missing, chunks collected so far.
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private need = -1;
  private head = new Uint8Array(4);
  private headFill = 0;

  constructor(
    private readonly sock: ByteStream,
    readonly kind: TransportKind,
    readonly remote: string,
    private readonly maxMessage: number,
  ) {
    sock.on('data', (c) => this.receive(c));
    sock.on('error', (e) => this.fail(new TabshardError('TS_ERR_TRANSPORT_CLOSED', e.message, { cause: e })));
    sock.on('close', () => this.shut(this.closeErr));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    const len = checkMessageSize(parts, this.maxMessage);
    if (this.isClosed) return;
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, len, true);
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
    this.pending = [];
    this.onclose?.(err);
  }

  private receive(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.byteLength && !this.isClosed) {
      if (this.need < 0) {
        // Reading the 4-byte length prefix, which may itself be split across chunks.
        if (this.headFill === 0 && chunk.byteLength - off >= 4) {
          this.need = new DataView(chunk.buffer, chunk.byteOffset + off, 4).getUint32(0, true);
          off += 4;
        } else {
          this.head[this.headFill++] = chunk[off++];
          if (this.headFill < 4) continue;
          this.need = new DataView(this.head.buffer).getUint32(0, true);
          this.headFill = 0;
        }
        if (this.need > this.maxMessage) {
          this.fail(new TabshardError('TS_ERR_FRAME_TOO_LARGE', `peer declared ${this.need} bytes`));
          return;
        }
        if (this.need === 0) this.deliver();
        continue;
      }
      const missing = this.need - this.pendingBytes;
      const take = Math.min(missing, chunk.byteLength - off);
      this.pending.push(chunk.subarray(off, off + take));
      this.pendingBytes += take;
      off += take;
      if (this.pendingBytes === this.need) this.deliver();
    }
  }

  private deliver(): void {
    const parts = this.pending;
    let msg: Uint8Array;
    if (parts.length === 1) {
      const p = parts[0];
      msg = new Uint8Array(p.buffer, p.byteOffset, p.byteLength); // a plain view, not a Node Buffer
    } else {
      msg = new Uint8Array(this.need);
      let o = 0;
      for (const p of parts) {
        msg.set(p, o);
        o += p.byteLength;
      }
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.need = -1;
    this.onmessage?.(msg);
  }
}

/** The part of Node's `net.connect` the dialer uses (injected, so shared/ does no I/O itself). */
export type ConnectFn = (opts: { host: string; port: number; noDelay: boolean }) => ByteStream & {
  once(event: 'connect', fn: () => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(event: 'error'): unknown;
};

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
        const sock = connect({ host, port, noDelay: true });
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
          resolve(new StreamConn(sock, 'tcp', address, maxMessage));
        });
      });
    },
  };
}
