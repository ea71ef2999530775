/**
 * The job API (fastify plugin): what a worker needs to join a job (its description, its shards,
 * the scheduler session over WebSocket) and the job's state, audit and controls. Controls (every
 * mutating route) need the admin token; the guard is put on them by admin-auth.ts.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { jobAppNames, listJobApps } from '../../apps/jobs.ts';
import { AUDIT_TABLE, type JobDriver } from '../jobs/driver.ts';
import { remoteOf, wsConn } from '../transports/ws.ts';
import type { WsLimitConfig } from './limits.ts';
import {
  adminErrors,
  errorSchema,
  jobParams,
  jobStatusSchema,
  jobSummarySchema,
  shardParams,
  tauSchema,
  workerParams,
} from './schemas.ts';
import { wsRoute } from './ws-routes.ts';

/** What `POST /api/jobs` asks for; omitted fields take the cluster's defaults. */
export interface NewJob {
  name?: string;
  /** A registered application (`GET /api/apps`; default: the first job's). */
  app?: string;
  shards?: number;
  /** The application's model settings (e.g. LDA's `topics`); default: the first job's, when the app is the same. */
  model?: Record<string, number>;
  iterations?: number;
  tau?: number | null;
}

export interface JobsPluginOptions {
  jobs(): JobDriver[];
  /** Starts a new job (none: `POST /api/jobs` is not offered). */
  createJob?: (req: NewJob) => Promise<JobDriver>;
}

/** Scheduler session messages are small JSON bodies: `ws` refuses a larger one at its header (close 1009). */
export const SESSION_MAX_MESSAGE = 64 * 1024;

const tags = ['jobs'];
const admin = ['admin'];

export async function jobsPlugin(app: FastifyInstance, opts: JobsPluginOptions): Promise<void> {
  const find = (job: number, reply: FastifyReply): JobDriver | undefined => {
    const d = opts.jobs().find((x) => x.app.job === job);
    if (!d) reply.code(404).send({ code: 'TS_ERR_UNKNOWN_JOB', message: `no job ${job}` });
    return d;
  };
  const summary = (d: JobDriver) => {
    const s = d.status();
    return { job: d.app.job, name: s.name, state: s.state, tau: s.tau, reached: d.reached, latest: d.latest };
  };

  app.get(
    '/api/apps',
    {
      schema: {
        summary: 'The applications a job may run (POST /api/jobs {app}, tabshard start --app)',
        tags,
        response: {
          200: {
            type: 'object',
            properties: {
              apps: {
                type: 'array',
                items: { type: 'object', properties: { name: { type: 'string' }, summary: { type: 'string' } } },
              },
            },
          },
        },
      },
    },
    async () => ({ apps: listJobApps() }),
  );

  app.get(
    '/api/jobs',
    {
      schema: {
        summary: 'The jobs this cluster runs',
        tags,
        response: { 200: { type: 'object', properties: { jobs: { type: 'array', items: jobSummarySchema } } } },
      },
    },
    async () => ({ jobs: opts.jobs().map(summary) }),
  );

  if (opts.createJob) {
    const create = opts.createJob;
    app.post<{ Body: NewJob }>(
      '/api/jobs',
      {
        schema: {
          summary: "Start a new job of a registered application (GET /api/apps) on the first job's data",
          tags: admin,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 64 },
              app: { type: 'string', enum: jobAppNames() },
              shards: { type: 'integer', minimum: 1, maximum: 256 },
              model: { type: 'object', maxProperties: 16, additionalProperties: { type: 'number' } },
              iterations: { type: 'integer', minimum: 1, maximum: 100_000 },
              tau: tauSchema,
            },
          },
          response: { 201: jobSummarySchema, 400: errorSchema, 401: errorSchema, 403: errorSchema },
        },
      },
      async (req, reply) => reply.code(201).send(summary(await create(req.body ?? {}))),
    );
  }

  app.get<{ Params: { job: number } }>(
    '/api/jobs/:job',
    {
      schema: {
        summary: "A job's status: scheduler state, tasks, workers (Figure 10), held-out metrics",
        tags,
        params: jobParams,
        response: { 200: jobStatusSchema, 404: errorSchema },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      return { ...d.status(), tables: d.app.tables.map((t) => t.name), auditTable: AUDIT_TABLE };
    },
  );

  app.get<{ Params: { job: number }; Querystring: Record<string, string> }>(
    '/api/jobs/:job/query',
    {
      schema: {
        summary: "A query of the model the servers hold now, in the job's application's terms (cms: ?item=TOKEN)",
        tags,
        params: jobParams,
        querystring: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 }, maxProperties: 8 },
        response: { 200: { type: 'object', additionalProperties: true }, 400: errorSchema, 404: errorSchema },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      return d.query({ ...req.query });
    },
  );

  app.get<{ Params: { job: number; shard: number } }>(
    '/api/jobs/:job/shards/:shard',
    {
      schema: {
        summary: 'One training shard in the binary shard format (with an ETag)',
        tags,
        params: shardParams,
        produces: ['application/octet-stream'],
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

  wsRoute<{ Params: { job: number } }>(
    app,
    '/api/jobs/:job/session',
    {
      maxPayload: SESSION_MAX_MESSAGE,
      schema: { summary: 'Scheduler session (WebSocket; docs/workers.md)', tags, params: jobParams },
      config: { wsGroup: 'sessions' } satisfies WsLimitConfig,
    },
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
    {
      schema: {
        summary: 'Exactly-once audit: how many tasks were applied never, once, more than once',
        tags,
        params: jobParams,
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      return { ...(await d.auditTasks()), scheduler: d.scheduler.tasks() };
    },
  );

  app.put<{ Params: { job: number }; Body: { tau: number | null } }>(
    '/api/jobs/:job/tau',
    {
      schema: {
        summary: 'Change the consistency bound τ while the job runs (0 BSP, k bounded delay, null ASP)',
        tags: admin,
        params: jobParams,
        body: { type: 'object', required: ['tau'], properties: { tau: tauSchema } },
        response: { 200: { type: 'object', properties: { tau: tauSchema } }, ...adminErrors },
      },
    },
    async (req, reply) => {
      const d = find(req.params.job, reply);
      if (!d) return;
      d.scheduler.setTau(req.body.tau);
      return { tau: d.scheduler.status().tau };
    },
  );

  const stateReply = { type: 'object', properties: { state: jobSummarySchema.properties.state } } as const;
  for (const [action, what] of [
    ['pause', 'Stop handing out tasks (leases out keep running)'],
    ['resume', 'Hand out tasks again after a pause'],
    ['stop', 'End the job'],
  ] as const)
    app.post<{ Params: { job: number } }>(
      `/api/jobs/:job/${action}`,
      { schema: { summary: what, tags: admin, params: jobParams, response: { 200: stateReply, ...adminErrors } } },
      async (req, reply) => {
        const d = find(req.params.job, reply);
        if (!d) return;
        if (action === 'stop') d.end();
        else d.scheduler[action]();
        return { state: d.scheduler.status().state };
      },
    );

  app.post<{ Params: { job: number; worker: number } }>(
    '/api/jobs/:job/workers/:worker/evict',
    {
      schema: {
        summary: 'Evict a worker: its leases return to the queue (fenced) and its sessions close',
        tags: admin,
        params: workerParams,
        response: { 200: { type: 'object', properties: { evicted: { type: 'integer' } } }, ...adminErrors },
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
