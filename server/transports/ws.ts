/**
 * The WebSocket transport on the server side: `wsConn` wraps an accepted `ws` socket (from
 * `ws`'s server or @fastify/websocket) as a `Conn`; `wsListen` is a stand-alone WebSocket
 * `Listener` (`ws://host:port/path`). One tabshard message per binary WebSocket message; see
 * `shared/transport/websocket.ts`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Conn, DEFAULT_MAX_MESSAGE, type Listener } from '../../shared/transport/types.ts';
import { type WebSocketLike, WsConn, type WsTuning } from '../../shared/transport/websocket.ts';

export interface WsConnOptions extends WsTuning {
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
}

/** The remote end of an upgrade request, for logs (`ws://addr:port`). */
export function remoteOf(req: IncomingMessage): string {
  return `ws://${req.socket.remoteAddress}:${req.socket.remotePort}`;
}

/** Wraps an open server-side `ws` socket as a `Conn`. */
export function wsConn(socket: WebSocket, remote: string, opts: WsConnOptions = {}): Conn {
  return new WsConn(socket as unknown as WebSocketLike, { ...opts, remote });
}

/** Listens for WebSocket connections on `host:port` (0 picks a free port) at `path` (default `/`). */
export async function wsListen(
  opts: WsConnOptions & { host?: string; port?: number; path?: string } = {},
): Promise<Listener> {
  const host = opts.host ?? '127.0.0.1';
  const path = opts.path ?? '/';
  const maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  const http = createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ server: http, path, maxPayload: maxMessage, perMessageDeflate: false });
  const listener: Listener & { onconnection: ((c: Conn) => void) | null } = {
    kind: 'ws',
    address: '',
    onconnection: null,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => http.close(() => resolve()));
      }),
  };
  wss.on('connection', (socket, req) => {
    const conn = wsConn(socket, remoteOf(req), { ...opts, maxMessage });
    if (listener.onconnection) listener.onconnection(conn);
    else conn.close();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  (listener as { address: string }).address = `ws://${host}:${port}${path}`;
  return listener;
}
