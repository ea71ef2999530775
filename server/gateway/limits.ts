/**
 * Abuse limits of the gateway (PROTOCOL.md §2.5): the gateway serves untrusted volunteers, so
 * what one address may open and send is bounded. Every refusal answers with a coded error in
 * the gateway's error shape and counts in `tabshard_refusals_total{code,where}` (metrics.ts):
 *
 * - **Origin** (where "origin"): a WebSocket upgrade (any route) whose `Origin` header is
 *   neither this gateway's own origin (its host equals the request's `Host`, http or https) nor
 *   in `allowedOrigins` → 403 TS_ERR_BAD_ORIGIN, before the upgrade. No `Origin` (a Node worker,
 *   any non-browser client) passes: the check stops other sites' pages from using visitors'
 *   browsers, not clients that can send any header they like.
 * - **New WebSockets per address** (where "ws-rate"): a token bucket per address (burst
 *   `wsBurst`, refilled at `wsPerSecond`) → 429 TS_ERR_RATE_LIMITED.
 * - **Open WebSockets per address**: scheduler sessions ("sessions", `maxSessionsPerAddress`)
 *   and relays, signal and data together ("relays", `maxRelaysPerAddress`) → 429
 *   TS_ERR_RATE_LIMITED. A slot is taken before the upgrade and given back when the TCP
 *   socket closes, however the request ends.
 * - **HTTP requests per address** (where "http-rate"): @fastify/rate-limit, `httpMax` requests
 *   per `httpWindowMs`, on every HTTP request (unknown routes too; upgrades are the bucket's)
 *   → 429 TS_ERR_RATE_LIMITED with `retry-after`.
 * - Message size (where "ws-size") is ws-routes.ts's: each WebSocket route's own `maxPayload`.
 *
 * The address is the TCP peer's (`req.ip`); `X-Forwarded-For` counts only when the app is
 * built with `trustProxy`. IPv6 addresses are grouped by /64 (what one host usually gets).
 * Defaults admit what the e2e tests and `npm run bench:scale` do from one address: 16 tabs,
 * each with one session and up to two relays to each of 3 nodes, all opened at once.
 */
import fastifyRateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TabshardError } from '../../shared/errors.ts';
import type { CountRefusal, RefusalWhere } from './metrics.ts';
import { upgradeOf } from './ws-routes.ts';

export interface GatewayLimits {
  /** Scheduler sessions one address may hold open (default 32). */
  maxSessionsPerAddress: number;
  /** Relay WebSockets (signal and data) one address may hold open (default 128). */
  maxRelaysPerAddress: number;
  /** New WebSockets one address may open at once (token bucket size, default 128). */
  wsBurst: number;
  /** New WebSockets per second one address may open in the long run (bucket refill, default 32). */
  wsPerSecond: number;
  /** HTTP requests one address may make per window (default 1200; 0: no HTTP limit). */
  httpMax: number;
  /** The HTTP window, in ms (default 60 000). */
  httpWindowMs: number;
  /**
   * How long a WebSocket refused for a too-large message (close 1009) may go on sending before it
   * is cut off, ms (default 1000).
   */
  refusedDrainMs: number;
}

export const DEFAULT_LIMITS: GatewayLimits = {
  maxSessionsPerAddress: 32,
  // 16 tabs × 3 nodes × 2 relays (signal, and data while a fallback overlaps) = 96, plus reconnects.
  maxRelaysPerAddress: 128,
  // 16 tabs opening 1 session + 6 relays each at the same moment = 112.
  wsBurst: 128,
  wsPerSecond: 32,
  // A tab's page, bundles, wasm, shards and a status poll every 5 s: ~40 a minute once loaded.
  httpMax: 1200,
  httpWindowMs: 60_000,
  refusedDrainMs: 1000,
};

/** The open-connection groups of WebSocket routes (route config `wsGroup`). */
export type WsGroup = 'sessions' | 'relays';

/** Route config read by the WebSocket guard. */
export interface WsLimitConfig {
  /** Which open-connection cap the route counts against (none: only Origin and the bucket). */
  wsGroup?: WsGroup;
}

/** The key one client is counted under: its address, IPv4-mapped IPv6 as IPv4, IPv6 by /64. */
export function addressKey(ip: string): string {
  try {
    return normalizeIP(ip, 64);
  } catch {
    return ip;
  }
}

/** An origin as browsers send it (`scheme://host[:port]`, lower case), or the string as is. */
function normalOrigin(origin: string): string {
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : origin;
  } catch {
    return origin;
  }
}

/** Normalises `allowedOrigins` (throws on an entry that is not an http(s) origin or "null"). */
export function originSet(origins: readonly string[] = []): Set<string> {
  return new Set(
    origins.map((o) => {
      if (o === 'null') return o;
      let u: URL | null = null;
      try {
        u = new URL(o);
      } catch {}
      const bare = u && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
      if (!u || !bare || (u.protocol !== 'http:' && u.protocol !== 'https:'))
        throw new Error(`allowedOrigins: ${o} is not an http(s) origin (scheme://host[:port])`);
      return u.origin;
    }),
  );
}

/**
 * True when a request with this `Origin` (undefined: none) to this `Host` may open a WebSocket:
 * no Origin, an origin whose host (port included, default ports as the origin's scheme has them)
 * is the Host, or one in `allowed`.
 */
export function originAllowed(origin: string | undefined, host: string, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  const o = normalOrigin(origin);
  if (allowed.has(o)) return true;
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    return false; // "null" (a sandboxed frame, a file:// page) and anything else that is not a URL
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  try {
    // Host parsed with the origin's scheme, so `example.org:443` and https://example.org agree.
    return host !== '' && new URL(`${u.protocol}//${host}`).host === u.host;
  } catch {
    return false;
  }
}

/**
 * Per-address state: a token bucket of new WebSockets and the open connections of each group.
 * Idle entries (a full bucket, nothing open) are dropped every minute, so the maps hold only
 * addresses seen lately.
 */
export class AddressLimits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly open: Record<WsGroup, Map<string, number>> = { sessions: new Map(), relays: new Map() };
  private swept: number;

  constructor(
    private readonly limits: Pick<
      GatewayLimits,
      'wsBurst' | 'wsPerSecond' | 'maxSessionsPerAddress' | 'maxRelaysPerAddress'
    >,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.swept = now();
  }

  /** Takes a token of `key`'s bucket; false when it is empty. */
  take(key: string): boolean {
    const t = this.now();
    if (t - this.swept > 60_000) this.sweep(t);
    const { wsBurst, wsPerSecond } = this.limits;
    const b = this.buckets.get(key) ?? { tokens: wsBurst, at: t };
    b.tokens = Math.min(wsBurst, b.tokens + ((t - b.at) / 1000) * wsPerSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `key`'s bucket has a token again. */
  retryAfter(key: string): number {
    const b = this.buckets.get(key);
    return b ? Math.max(1, Math.ceil((1 - b.tokens) / this.limits.wsPerSecond)) : 1;
  }

  /** Open connections of `group` held by `key`. */
  count(group: WsGroup, key: string): number {
    return this.open[group].get(key) ?? 0;
  }

  /** Takes one of `key`'s `group` slots: the function that gives it back (once), or null when all are taken. */
  reserve(group: WsGroup, key: string): (() => void) | null {
    const max = group === 'sessions' ? this.limits.maxSessionsPerAddress : this.limits.maxRelaysPerAddress;
    const m = this.open[group];
    const n = m.get(key) ?? 0;
    if (n >= max) return null;
    m.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (m.get(key) ?? 1) - 1;
      if (left > 0) m.set(key, left);
      else m.delete(key);
    };
  }

  private sweep(t: number): void {
    this.swept = t;
    const { wsBurst, wsPerSecond } = this.limits;
    for (const [key, b] of this.buckets)
      if (b.tokens + ((t - b.at) / 1000) * wsPerSecond >= wsBurst) this.buckets.delete(key);
  }
}

/** Sends a refusal in the gateway's error shape and counts it. */
function refuse(reply: FastifyReply, count: CountRefusal, where: RefusalWhere, err: TabshardError): FastifyReply {
  count(where);
  return reply.code(err.status).send({ code: err.code, message: err.message });
}

const clip = (s: string) => (s.length > 80 ? `${s.slice(0, 80)}…` : s);

/**
 * The WebSocket guard: an `onRequest` hook on `app` (register it before any route) that checks
 * every upgrade request — Origin, the address's bucket, then the route's open-connection cap —
 * and refuses it over HTTP before the upgrade.
 */
export function guardWebSockets(
  app: FastifyInstance,
  opts: { limits: GatewayLimits; allowedOrigins?: readonly string[]; count: CountRefusal },
): AddressLimits {
  const allowed = originSet(opts.allowedOrigins);
  const state = new AddressLimits(opts.limits);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const up = upgradeOf(req.raw);
    if (!up) return;
    const origin = req.headers.origin;
    if (!originAllowed(origin, req.host, allowed))
      return refuse(
        reply,
        opts.count,
        'origin',
        new TabshardError(
          'TS_ERR_BAD_ORIGIN',
          `${clip(String(origin))} is not this gateway's origin (${clip(req.host)})`,
        ),
      );
    const key = addressKey(req.ip);
    if (!state.take(key)) {
      reply.header('retry-after', state.retryAfter(key));
      return refuse(
        reply,
        opts.count,
        'ws-rate',
        new TabshardError(
          'TS_ERR_RATE_LIMITED',
          `more than ${opts.limits.wsBurst} new WebSockets at once, ${opts.limits.wsPerSecond}/s in the long run, from ${key}`,
        ),
      );
    }
    const group = (req.routeOptions.config as WsLimitConfig | undefined)?.wsGroup;
    if (!group) return;
    const release = state.reserve(group, key);
    if (!release) {
      const max = group === 'sessions' ? opts.limits.maxSessionsPerAddress : opts.limits.maxRelaysPerAddress;
      const what = group === 'sessions' ? 'scheduler sessions' : 'relay connections';
      return refuse(
        reply,
        opts.count,
        group,
        new TabshardError('TS_ERR_RATE_LIMITED', `${key} has ${max} ${what} open already`),
      );
    }
    if (up.socket.destroyed) release();
    else up.socket.once('close', release);
  });
  return state;
}

/** A plugin that shares its parent's context (what fastify-plugin does), so its hooks are the app's. */
function unencapsulated<T>(fn: T): T {
  (fn as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
  return fn;
}

/**
 * The HTTP limit: @fastify/rate-limit (in-memory, per `addressKey`) checked by an app-level
 * `onRequest` hook — so it covers every request, unknown routes included, and runs before the
 * admin guard (a token guesser is counted too). Upgrades are left to the WebSocket guard.
 * Register it before any route.
 */
export function limitHttp(app: FastifyInstance, opts: { limits: GatewayLimits; count: CountRefusal }): void {
  const { httpMax, httpWindowMs } = opts.limits;
  if (!(httpMax > 0)) return;
  app.register(fastifyRateLimit, {
    global: false,
    max: httpMax,
    timeWindow: httpWindowMs,
    keyGenerator: (req) => addressKey(req.ip),
  });
  app.register(
    unencapsulated(async (scope: FastifyInstance) => {
      const check = scope.createRateLimit();
      scope.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        if (upgradeOf(req.raw)) return;
        const r = await check(req);
        if (r.isAllowed || !r.isExceeded) return;
        reply.header('retry-after', r.ttlInSeconds);
        return refuse(
          reply,
          opts.count,
          'http-rate',
          new TabshardError(
            'TS_ERR_RATE_LIMITED',
            `more than ${r.max} requests in ${Math.round(r.timeWindow / 1000)} s from ${r.key}; retry in ${r.ttlInSeconds} s`,
          ),
        );
      });
    }),
  );
}
