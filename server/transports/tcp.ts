/**
 * TCP for server nodes: a listener that accepts length-prefixed `Conn`s on a port (0 picks a free one).
 */
import { connect, createServer, Socket } from 'node:net';
import { StreamConn, streamDialer } from '../../shared/transport/stream.ts';
import { type Conn, DEFAULT_MAX_MESSAGE, type Dialer, type Listener } from '../../shared/transport/types.ts';

/** TCP dialer for server-to-server traffic (the server manager, replication). */
export function tcpDialer(opts: { maxMessage?: number; timeoutMs?: number } = {}): Dialer {
  return streamDialer(connect, opts);
}

/** Bytes an accepted connection reads into at a time (one buffer per connection, reused). */
const READ_BUFFER = 256 * 1024;

/**
 * The accepted socket re-made to read into one buffer of its own (`onread`) instead of a fresh
 * one per read: Node offers `onread` only to sockets it constructs, not to those a server
 * accepts. HACK: the accepted (still paused) socket gives its `_handle` up to a new Socket built
 * with `onread` and is destroyed without it (which also ends the server's count of it: the
 * listener tracks and closes its sockets itself). Where the handle is not there, the accepted
 * socket is returned as it is and reads arrive as 'data' events.
 */
function readingIntoOneBuffer(accepted: Socket, onBytes: (bytes: Uint8Array) => void): Socket {
  const s = accepted as unknown as { _handle: unknown };
  if (!s._handle) return accepted;
  const handle = s._handle;
  s._handle = null;
  accepted.destroy();
  const buffer = new Uint8Array(READ_BUFFER);
  return new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (bytes: number) => {
        onBytes(buffer.subarray(0, bytes));
        return true;
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
}

export async function tcpListen(opts: { host?: string; port?: number; maxMessage?: number } = {}): Promise<Listener> {
  const host = opts.host ?? '127.0.0.1';
  const maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  const sockets = new Set<Socket>();
  const listener: Listener & { onconnection: ((c: Conn) => void) | null } = {
    kind: 'tcp',
    address: '',
    onconnection: null,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
    const remote = `tcp://${accepted.remoteAddress}:${accepted.remotePort}`;
    let conn: StreamConn | null = null;
    const sock = readingIntoOneBuffer(accepted, (bytes) => conn?.receive(bytes, false));
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    conn = new StreamConn(sock, 'tcp', remote, maxMessage, sock === accepted);
    if (sock === accepted) sock.resume();
    if (listener.onconnection) listener.onconnection(conn);
    else conn.close();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  (listener as { address: string }).address = `tcp://${host}:${port}`;
  return listener;
}
