/**
 * The gateway's WebSocket routes (the relays, the scheduler session), each with its own `ws`
 * server and so its own message limit. `ws` checks `maxPayload` against the length a frame
 * header declares: a message above the route's limit is refused with close code 1009 before any
 * of its payload is buffered (a 60 MiB message to the 64 KiB signal relay costs the gateway
 * nothing), and a client that goes on sending is cut off a second later. @fastify/websocket runs every route through one `ws` server, hence one maxPayload
 * for all, and `ws` has no per-connection setting; `ws`'s documented way to give paths different
 * options is one `WebSocketServer` per path in `noServer` mode fed by the HTTP server's
 * `upgrade` event ("Multiple servers sharing a single HTTP/S server", ws README), which is what
 * this module does.
 *
 * An upgrade request goes through fastify's router like any request (`app.routing`), so every
 * hook sees it first: the Origin check and the per-address limits (limits.ts) answer it with an
 * HTTP status and the gateway's coded body before the upgrade. A request that gets an HTTP
 * answer (a refusal, a route that is not a WebSocket, no route) has its socket ended and
 * destroyed once the answer is out. A plain GET to a WebSocket route gets 426.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyRequest, FastifySchema, RouteGenericInterface } from 'fastify';
import { type WebSocket, WebSocketServer } from 'ws';

/** The socket and first bytes of an upgrade request. */
export interface Upgrade {
  socket: Duplex;
  head: Buffer;
}

const kUpgrade = Symbol('tabshard.upgrade');
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: Upgrade };

/** The upgrade under `raw`, when `raw` came in as an HTTP upgrade (a WebSocket handshake). */
export function upgradeOf(raw: IncomingMessage): Upgrade | undefined {
  return (raw as UpgradeRequest)[kUpgrade];
}

/** What the WebSocket routes share: their servers (closed with the app) and the refusal hook. */
export interface WebSocketHub {
  readonly servers: Set<WebSocketServer>;
  /** Called for each message `ws` refused at its header (above the route's limit, close 1009). */
  ontoolarge: (() => void) | null;
  /** How long a socket refused for a too-large message may go on sending before it is cut off. */
  refusedDrainMs: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    webSockets: WebSocketHub;
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Feeds `app`'s HTTP upgrades through its router (call once, before any WebSocket route). On
 * close the listener goes and open WebSockets are closed (as @fastify/websocket did).
 */
export function installWebSockets(
  app: FastifyInstance,
  hooks: { ontoolarge?: () => void; refusedDrainMs?: number } = {},
): void {
  const hub: WebSocketHub = {
    servers: new Set(),
    ontoolarge: hooks.ontoolarge ?? null,
    refusedDrainMs: hooks.refusedDrainMs ?? 1000,
  };
  app.decorate('webSockets', hub);
  const onUpgrade = (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node drops its own error listener before 'upgrade'; keep the socket guarded until ws takes it.
    socket.on('error', destroyOnError);
    (raw as UpgradeRequest)[kUpgrade] = { socket, head };
    const res = new ServerResponse(raw);
    try {
      res.assignSocket(socket as Socket);
      app.routing(raw, res);
    } catch {
      socket.destroy();
    }
  };
  app.server.on('upgrade', onUpgrade);
  // Answered over HTTP (refused, not a WebSocket route, no route): end the socket once sent.
  app.addHook('onResponse', (req, _reply, done) => {
    const up = upgradeOf(req.raw);
    if (up && !up.socket.destroyed) {
      up.socket.once('finish', () => up.socket.destroy());
      up.socket.end();
    }
    done();
  });
  app.addHook('preClose', (done) => {
    app.server.removeListener('upgrade', onUpgrade);
    for (const wss of hub.servers) for (const ws of wss.clients) ws.close();
    done();
  });
}

export interface WsRouteOptions {
  /** Largest message accepted, checked by `ws` at each frame header (close 1009 above it). */
  maxPayload: number;
  schema?: FastifySchema;
  /** Route config (e.g. limits.ts's `wsGroup`, admin-auth.ts's flags). */
  config?: Record<string, unknown>;
}

/**
 * A WebSocket route at `url` with its own `ws` server (`opts.maxPayload`, no compression);
 * `handler` gets each open socket. Hidden from the OpenAPI description (OpenAPI 3.0 has no
 * WebSockets).
 */
export function wsRoute<R extends RouteGenericInterface>(
  app: FastifyInstance,
  url: string,
  opts: WsRouteOptions,
  handler: (socket: WebSocket, req: FastifyRequest<R>) => void,
): void {
  const hub = app.webSockets;
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false });
  hub.servers.add(wss);
  app.get(url, { schema: { ...opts.schema, hide: true } as FastifySchema, config: opts.config }, (req, reply) => {
    const up = upgradeOf(req.raw);
    if (!up)
      return reply
        .code(426)
        .header('upgrade', 'websocket')
        .send({ code: 'TS_ERR_INVALID_ARGUMENT', message: `${url} is a WebSocket endpoint: send an upgrade request` });
    reply.hijack();
    // ws puts its own error listener on the socket in handleUpgrade (and answers a bad handshake itself).
    up.socket.removeListener('error', destroyOnError);
    wss.handleUpgrade(req.raw, up.socket, up.head, (socket) => {
      socket.on('error', (err: Error & { code?: string }) => {
        if (err.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return;
        hub.ontoolarge?.();
        // ws has sent close 1009 and now reads and drops what still comes, for up to 30 s; a
        // client that goes on sending after the refusal is cut off sooner.
        const cut = setTimeout(() => socket.terminate(), hub.refusedDrainMs);
        cut.unref();
        socket.once('close', () => clearTimeout(cut));
      });
      try {
        handler(socket, req as FastifyRequest<R>);
      } catch {
        socket.terminate();
      }
    });
  });
}
