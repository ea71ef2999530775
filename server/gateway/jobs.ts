/**
 * The job API (fastify plugin): what a worker needs to join a job (its description, its shards,
 * the scheduler session over WebSocket) and the job's state, audit and controls. Controls need
 * the admin token (`Authorization: Bearer <token>`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AUDIT_TABLE, type JobDriver } from '../jobs/driver.ts';
import { remoteOf, wsConn } from '../transports/ws.ts';

export interface JobsPluginOptions {
  jobs(): JobDriver[];
  adminToken: string;
}

/** Scheduler session messages are small JSON bodies. */
const SESSION_MAX_MESSAGE = 64 * 1024;

const jobParams = {
  type: 'object',
  required: ['job'],
  properties: { job: { type: 'integer', minimum: 0, maximum: 0xffffffff } },
} as const;

export async function jobsPlugin(app: FastifyInstance, opts: JobsPluginOptions): Promise<void> {
  const find = (job: number, reply: FastifyReply): JobDriver | undefined => {
    const d = opts.jobs().find((x) => x.app.job === job);
    if (!d) reply.code(404).send({ code: 'TS_ERR_UNKNOWN_JOB', message: `no job ${job}` });
    return d;
  };
  const admin = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!opts.adminToken || req.headers.authorization !== `Bearer ${opts.adminToken}`)
      return reply.code(401).send({ code: 'TS_ERR_FORBIDDEN', message: 'admin token required' });
  };

  app.get('/api/jobs', async () => ({
    jobs: opts.jobs().map((d) => {
      const s = d.status();
      return { job: d.app.job, name: s.name, state: s.state, tau: s.tau, reached: d.reached, latest: d.latest };
    }),
  }));

  app.get<{ Params: { job: number } }>('/api/jobs/:job', { schema: { params: jobParams } }, async (req, reply) => {
    const d = find(req.params.job, reply);
    if (!d) return;
    return { ...d.status(), table: d.app.tables[0].name, auditTable: AUDIT_TABLE };
  });

  app.get<{ Params: { job: number; shard: number } }>(
    '/api/jobs/:job/shards/:shard',
    {
      schema: {
        params: {
          type: 'object',
          required: ['job', 'shard'],
          properties: { ...jobParams.properties, shard: { type: 'integer', minimum: 0 } },
        },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      const bytes = d.app.shards[req.params.shard];
      if (!bytes)
        return reply.code(404).send({ code: 'TS_ERR_UNKNOWN_SHARD', message: `no shard ${req.params.shard}` });
      const etag = `"${d.app.version}-${req.params.shard}"`;
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  );

  app.get<{ Params: { job: number } }>(
    '/api/jobs/:job/session',
    { websocket: true, schema: { params: jobParams } },
    (socket, req) => {
      const d = opts.jobs().find((x) => x.app.job === req.params.job);
      if (!d) {
        socket.close(4404, 'TS_ERR_UNKNOWN_JOB');
        return;
      }
      d.scheduler.serve(wsConn(socket, remoteOf(req.raw), { maxMessage: SESSION_MAX_MESSAGE }));
    },
  );

  app.get<{ Params: { job: number } }>(
    '/api/jobs/:job/audit',
    { schema: { params: jobParams } },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      return { ...(await d.auditTasks()), scheduler: d.scheduler.tasks() };
    },
  );

  app.put<{ Params: { job: number }; Body: { tau: number | null } }>(
    '/api/jobs/:job/tau',
    {
      preHandler: admin,
      schema: {
        params: jobParams,
        body: {
          type: 'object',
          required: ['tau'],
          // One union type, not anyOf: fastify's Ajv coerces types, and would turn null into 0 (or
          // 0 into null) in whichever anyOf branch it tries first.
          properties: { tau: { type: ['integer', 'null'], minimum: 0 } },
        },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      d.scheduler.setTau(req.body.tau);
      return { tau: req.body.tau };
    },
  );

  for (const action of ['pause', 'resume', 'stop'] as const)
    app.post<{ Params: { job: number } }>(
      `/api/jobs/:job/${action}`,
      { preHandler: admin, schema: { params: jobParams } },
      async (req, reply) => {
        const d = find(req.params.job, reply);
        if (!d) return;
        d.scheduler[action]();
        return { state: d.scheduler.status().state };
      },
    );

  app.post<{ Params: { job: number; worker: number } }>(
    '/api/jobs/:job/workers/:worker/evict',
    {
      preHandler: admin,
      schema: {
        params: {
          type: 'object',
          required: ['job', 'worker'],
          properties: { ...jobParams.properties, worker: { type: 'integer', minimum: 0, maximum: 0xffffffff } },
        },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      d.scheduler.evict(req.params.worker);
      return { evicted: req.params.worker };
    },
  );
}
