/**
 * The OpenAPI description of the gateway's REST API (@fastify/swagger), served at
 * `GET /api/openapi.json`. It is generated from the routes' own schemas, so it cannot drift
 * from what the routes validate. Register it before any route.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';

/** Registers @fastify/swagger on `app` itself (so it sees every route) and the JSON route. */
export function registerOpenapi(app: FastifyInstance): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tabshard gateway',
        description:
          'Job API, admin controls, server-node membership (list, join, drain), the console stream and metrics of a tabshard cluster. Mutating routes, and the views of the nodes themselves (`/api/cluster`, `/api/stats`, `/metrics`, `/api/nodes`, the console stream), need `Authorization: Bearer <admin token>`: 401 TS_ERR_UNAUTHORIZED without it, 403 TS_ERR_FORBIDDEN with a wrong one. Every address may make a limited number of requests per minute (429 TS_ERR_RATE_LIMITED, with `retry-after`). WebSocket endpoints (not described by OpenAPI 3.0): `GET /api/jobs/{job}/session` (scheduler session), `GET /relay/{node}/signal` and `/relay/{node}/data` (relays to a server node), refused with 403 TS_ERR_BAD_ORIGIN from a foreign page and 429 TS_ERR_RATE_LIMITED past the per-address limits; see docs/workers.md and PROTOCOL.md §2.5.',
        version: '0.1.0',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.register(async (child) => {
    child.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });
}
