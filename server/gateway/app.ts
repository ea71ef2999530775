/**
 * The gateway (fastify): health, the cluster layout, the relays a browser tab uses to reach the
 * server nodes (relay.ts), the browser bundles and pages (assets.ts), and the job API with the
 * scheduler sessions (jobs.ts). The console arrives as a plugin of its own.
 */
import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { Dialer } from '../../shared/transport/types.ts';
import type { JobDriver } from '../jobs/driver.ts';
import { type AssetsOptions, assetsPlugin } from './assets.ts';
import { jobsPlugin } from './jobs.ts';
import { DEFAULT_RELAY_MAX_MESSAGE, relayPlugin } from './relay.ts';

export interface GatewayDeps {
  cluster(): ClusterInfo;
  stats(): Promise<unknown[]>;
  /** Dials server nodes' TCP addresses for the relays (none: no relay routes). */
  dialer?: Dialer;
  /** Largest message relayed to a node (default 64 MiB). */
  relayMaxMessage?: number;
  /** Browser bundles and pages (none: not served). */
  assets?: AssetsOptions;
  /** The jobs this cluster runs (none: no job API). */
  jobs?: () => JobDriver[];
  /** Token the admin API requires (`Authorization: Bearer <token>`). */
  adminToken?: string;
}

export function buildApp(deps: GatewayDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof TabshardError) return reply.status(err.status).send({ code: err.code, message: err.message });
    if (err.validation) return reply.status(400).send({ code: 'TS_ERR_INVALID_ARGUMENT', message: err.message });
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    return reply
      .status(status)
      .send({ code: status < 500 ? 'TS_ERR_INVALID_ARGUMENT' : 'TS_ERR_INTERNAL', message: err.message });
  });
  app.get('/health', async () => ({ ok: true }));
  app.get('/api/cluster', async () => deps.cluster());
  app.get('/api/stats', async () => ({ nodes: await deps.stats() }));
  const maxMessage = deps.relayMaxMessage ?? DEFAULT_RELAY_MAX_MESSAGE;
  app.register(websocket, { options: { maxPayload: maxMessage, perMessageDeflate: false } });
  if (deps.dialer) app.register(relayPlugin, { cluster: deps.cluster, dialer: deps.dialer, maxMessage });
  if (deps.assets) app.register(assetsPlugin, deps.assets);
  if (deps.jobs) app.register(jobsPlugin, { jobs: deps.jobs, adminToken: deps.adminToken ?? '' });
  return app;
}
