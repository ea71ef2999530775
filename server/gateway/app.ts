/**
 * The gateway (fastify): health, the cluster layout, the relays a browser tab uses to reach the
 * server nodes (relay.ts), the browser bundles and pages (assets.ts), the job API with the
 * scheduler sessions and admin controls (jobs.ts), the server group's membership: node states,
 * join and drain (nodes.ts), the admin console's live stream (console.ts), Prometheus metrics
 * (metrics.ts) and the OpenAPI description (openapi.ts). Every mutating route needs the admin
 * token (admin-auth.ts), and so do the views that name nodes' own addresses and load
 * (`/api/cluster`, `/api/stats`, `/metrics`). WebSocket routes have their own message limits
 * (ws-routes.ts); the Origin check and the per-address limits on WebSockets and HTTP are
 * limits.ts's.
 */
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyServerOptions,
  type RouteOptions,
} from 'fastify';
import { Registry } from 'prom-client';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { Dialer } from '../../shared/transport/types.ts';
import type { IceConfig } from '../auth/turn.ts';
import type { JobDriver } from '../jobs/driver.ts';
import { guardAdminRoutes } from './admin-auth.ts';
import { type AssetsOptions, assetsPlugin } from './assets.ts';
import { consolePlugin } from './console.ts';
import { jobsPlugin, type NewJob } from './jobs.ts';
import { DEFAULT_LIMITS, type GatewayLimits, guardWebSockets, limitHttp } from './limits.ts';
import { metricsPlugin, type NodeView, refusalCounter } from './metrics.ts';
import { type Membership, nodesPlugin } from './nodes.ts';
import { registerOpenapi } from './openapi.ts';
import { DEFAULT_RELAY_MAX_MESSAGE, relayPlugin } from './relay.ts';
import { installWebSockets } from './ws-routes.ts';

export interface GatewayDeps {
  cluster(): ClusterInfo;
  /** One entry per server node: its STATS, or `{ node, error }` if it did not answer (metrics.ts, NodeStatsResult). */
  stats(): Promise<unknown[]>;
  /** Each server node's state and key-range counts (none: the manager has no membership view). */
  nodes?: () => NodeView[];
  /** Live join and drain of server nodes (`POST /api/nodes`, `/api/nodes/:id/drain`; none: not offered). */
  membership?: Membership;
  /** Dials server nodes' TCP addresses for the relays (none: no relay routes). */
  dialer?: Dialer;
  /** Largest message relayed to a node (default 64 MiB). */
  relayMaxMessage?: number;
  /** ICE servers for the tabs' WebRTC (in each `GET /api/jobs/:job/cluster`; server/auth/turn.ts). */
  ice?: IceConfig;
  /** Browser bundles and pages (none: not served). */
  assets?: AssetsOptions;
  /** The jobs this cluster runs (none: no job API). */
  jobs?: () => JobDriver[];
  /** Starts a new job (`POST /api/jobs`; none: not offered). */
  createJob?: (req: NewJob) => Promise<JobDriver>;
  /** Token the admin API and the console require (`Authorization: Bearer <token>`); none: admin API off. */
  adminToken?: string;
  /** Console snapshots at most this often (default 250 ms). */
  consoleIntervalMs?: number;
  /** Sees every route as it is registered (tests walk them). */
  onRoute?: (route: RouteOptions) => void;
  /**
   * Origins (`https://host[:port]`) besides the gateway's own whose pages may open its
   * WebSockets; a foreign Origin is refused with 403 TS_ERR_BAD_ORIGIN (default: none).
   */
  allowedOrigins?: string[];
  /**
   * Behind a reverse proxy: which proxies' `X-Forwarded-For`/`-Host`/`-Proto` to believe
   * (fastify's `trustProxy`). Default false: the address limits count the TCP peer.
   */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /** Per-address limits (defaults: DEFAULT_LIMITS). */
  limits?: Partial<GatewayLimits>;
  /** Serve HTTPS (pages, API, and the relays and sessions as wss) with this certificate and key (PEM). */
  tls?: { cert: Buffer | string; key: Buffer | string };
}

export function buildApp(deps: GatewayDeps): FastifyInstance {
  // With TLS the server is an https.Server; routes, hooks and the WebSocket upgrade are the same.
  const app = Fastify({
    logger: false,
    trustProxy: deps.trustProxy ?? false,
    ...(deps.tls ? { https: deps.tls } : {}),
  }) as unknown as FastifyInstance;
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const registry = new Registry();
  const countRefusal = refusalCounter(registry);
  // Hooks first: they must see every route, plugins' included.
  guardAdminRoutes(app, deps.adminToken ?? '');
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute);
  installWebSockets(app, { ontoolarge: () => countRefusal('ws-size'), refusedDrainMs: limits.refusedDrainMs });
  guardWebSockets(app, { limits, allowedOrigins: deps.allowedOrigins, count: countRefusal });
  limitHttp(app, { limits, count: countRefusal });
  registerOpenapi(app);
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof TabshardError) return reply.status(err.status).send({ code: err.code, message: err.message });
    if (err.validation) return reply.status(400).send({ code: 'TS_ERR_INVALID_ARGUMENT', message: err.message });
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    return reply
      .status(status)
      .send({ code: status < 500 ? 'TS_ERR_INVALID_ARGUMENT' : 'TS_ERR_INTERNAL', message: err.message });
  });
  app.register(async (core) => {
    const tags = ['cluster'];
    core.get('/health', { schema: { summary: 'Liveness', tags } }, async () => ({ ok: true }));
    // Admin only: the nodes' own TCP addresses (a tab gets relay addresses: /api/jobs/:job/cluster).
    const admin = { admin: true };
    core.get(
      '/api/cluster',
      { config: admin, schema: { summary: 'Ring, node addresses and tables (ClusterInfo)', tags } },
      async () => deps.cluster(),
    );
    const summary = "Every server node's STATS, or { node, error } for a node that did not answer";
    core.get('/api/stats', { config: admin, schema: { summary, tags } }, async () => ({
      nodes: await deps.stats(),
    }));
  });
  const maxMessage = deps.relayMaxMessage ?? DEFAULT_RELAY_MAX_MESSAGE;
  if (deps.dialer) app.register(relayPlugin, { cluster: deps.cluster, dialer: deps.dialer, maxMessage, ice: deps.ice });
  if (deps.assets) app.register(assetsPlugin, deps.assets);
  const jobs = deps.jobs ?? (() => []);
  if (deps.nodes || deps.membership)
    app.register(nodesPlugin, { cluster: deps.cluster, nodes: deps.nodes, membership: deps.membership });
  if (deps.jobs) app.register(jobsPlugin, { jobs: deps.jobs, createJob: deps.createJob });
  app.register(consolePlugin, {
    cluster: deps.cluster,
    stats: deps.stats,
    nodes: deps.nodes,
    jobs,
    minIntervalMs: deps.consoleIntervalMs,
  });
  app.register(metricsPlugin, { stats: deps.stats, nodes: deps.nodes, cluster: deps.cluster, jobs, registry });
  return app;
}
