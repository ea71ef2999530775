/**
 * TCP for server nodes: a listener that accepts length-prefixed `Conn`s on a port (0 picks a free one).
 */
import { connect, createServer, type Socket } from 'node:net';
import { StreamConn, streamDialer } from '../../shared/transport/stream.ts';
import { type Conn, DEFAULT_MAX_MESSAGE, type Dialer, type Listener } from '../../shared/transport/types.ts';

/** TCP dialer for server-to-server traffic (the server manager, replication). */
export function tcpDialer(opts: { maxMessage?: number; timeoutMs?: number } = {}): Dialer {
  return streamDialer(connect, opts);
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
  const server = createServer({ noDelay: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const conn = new StreamConn(sock, 'tcp', `tcp://${sock.remoteAddress}:${sock.remotePort}`, maxMessage);
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
