/**
 * The gateway (fastify). For now: health and the cluster layout; the worker page, signalling,
 * the job API and the console arrive with later issues as plugins of their own.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { ClusterInfo } from '../../shared/cluster.ts';

export interface GatewayDeps {
  cluster(): ClusterInfo;
  stats(): Promise<unknown[]>;
}

export function buildApp(deps: GatewayDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ ok: true }));
  app.get('/api/cluster', async () => deps.cluster());
  app.get('/api/stats', async () => ({ nodes: await deps.stats() }));
  return app;
}
