/**
 * The admin console's live stream (fastify plugin): `GET /api/console/stream`, admin token
 * required, answers `text/event-stream` — one server-sent event per ConsoleFeed message
 * (`event: hello|snapshot|metric|cluster`, `data:` its JSON). The console reads it with
 * `fetch()` so the token travels in the Authorization header like every other admin call
 * (EventSource cannot send headers). A comment line every 15 s keeps proxies from closing it.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ConsoleFeed, type ConsoleFeedDeps } from './console-feed.ts';

export type ConsolePluginOptions = ConsoleFeedDeps;

const KEEPALIVE_MS = 15_000;

declare module 'fastify' {
  interface FastifyInstance {
    /** The console's feed (jobs created at run time call `consoleFeed.changed()`). */
    consoleFeed: ConsoleFeed;
  }
}

export async function consolePlugin(app: FastifyInstance, opts: ConsolePluginOptions): Promise<void> {
  const feed = new ConsoleFeed(opts);
  app.decorate('consoleFeed', feed);
  const open = new Set<ServerResponse>();
  // End the streams before the server closes, or close() would wait for them forever.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
    feed.close();
  });

  app.get(
    '/api/console/stream',
    {
      config: { admin: true },
      schema: {
        summary: "The console's live stream (server-sent events: hello, snapshot, metric, cluster)",
        tags: ['console'],
        produces: ['text/event-stream'],
      },
    },
    (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.flushHeaders();
      open.add(res);
      const stop = feed.watch((m) => {
        res.write(`event: ${m.type}\ndata: ${JSON.stringify(m)}\n\n`);
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      const end = () => {
        clearInterval(keepalive);
        open.delete(res);
        stop();
      };
      req.raw.once('close', end);
      res.once('close', end);
    },
  );
}
