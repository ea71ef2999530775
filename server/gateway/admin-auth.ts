/**
 * The admin token (docs/architecture.md §9): every route that changes anything, and the console's live
 * stream, needs `Authorization: Bearer <token>`. The guard is put on routes by an `onRoute` hook,
 * so a mutating route added later is guarded without anyone remembering to: any method other
 * than GET/HEAD/OPTIONS is guarded unless its `config.public` says otherwise (none does), and a
 * GET route opts in with `config.admin`.
 *
 * No header, or not a Bearer one: 401 TS_ERR_UNAUTHORIZED. A wrong token: 403 TS_ERR_FORBIDDEN.
 * Tokens are compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import { TabshardError } from '../../shared/errors.ts';

/** Route `config` flags the guard reads. */
export interface AdminRouteConfig {
  /** A GET route that needs the token too (the console's stream, the node list). */
  admin?: boolean;
  /** A mutating route anyone may call (none today). */
  public?: boolean;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True when the route changes something (any method other than GET, HEAD, OPTIONS). */
export function isMutating(method: RouteOptions['method']): boolean {
  return (Array.isArray(method) ? method : [method]).some((m) => !SAFE.has(m.toUpperCase()));
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks a request's `Authorization` header against `token`; throws the coded refusal. */
export function checkAdmin(authorization: string | undefined, token: string): void {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!m) throw new TabshardError('TS_ERR_UNAUTHORIZED');
  // An empty configured token refuses everyone: the admin API is then off.
  if (!token || !timingSafeEqual(digest(m[1]), digest(token)))
    throw new TabshardError('TS_ERR_FORBIDDEN', 'wrong admin token');
}

/** The onRequest hook that refuses requests without the admin token. */
export function adminGuard(token: string): onRequestHookHandler {
  return (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    try {
      checkAdmin(req.headers.authorization, token);
      done();
    } catch (err) {
      const e = err as TabshardError;
      reply.code(e.status).send({ code: e.code, message: e.message });
    }
  };
}

/**
 * Puts the admin guard in front of every mutating route (and every route whose config says
 * `admin: true`) registered on `app` from now on, plugins included. Register it first.
 */
export function guardAdminRoutes(app: FastifyInstance, token: string): void {
  const guard = adminGuard(token);
  app.addHook('onRoute', (route) => {
    const cfg = (route.config ?? {}) as AdminRouteConfig;
    if (!(cfg.admin || (isMutating(route.method) && !cfg.public))) return;
    const own = route.onRequest;
    route.onRequest = [guard, ...(own === undefined ? [] : Array.isArray(own) ? own : [own])];
    route.schema = { ...route.schema, security: [{ bearer: [] }] } as RouteOptions['schema'];
  });
}
