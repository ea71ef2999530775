/**
 * JSON schemas shared by the gateway's routes: they validate requests, and @fastify/swagger turns
 * them into the OpenAPI description (/api/openapi.json). Response schemas of large views keep
 * `additionalProperties: true` so the serializer never drops a field the schema does not list.
 */

export const errorSchema = {
  type: 'object',
  description: 'A coded error (README: error codes)',
  required: ['code', 'message'],
  properties: { code: { type: 'string', example: 'TS_ERR_UNKNOWN_JOB' }, message: { type: 'string' } },
} as const;

const u32 = { type: 'integer', minimum: 0, maximum: 0xffffffff } as const;

export const jobParams = {
  type: 'object',
  required: ['job'],
  properties: { job: u32 },
} as const;

export const workerParams = {
  type: 'object',
  required: ['job', 'worker'],
  properties: { job: u32, worker: u32 },
} as const;

export const shardParams = {
  type: 'object',
  required: ['job', 'shard'],
  properties: { job: u32, shard: { type: 'integer', minimum: 0 } },
} as const;

/** τ: an integer ≥ 0 (0 = BSP, k = bounded delay) or null (ASP, no bound). */
// HACK: not `anyOf: [integer, null]`: fastify's Ajv coerces types, and would turn null into 0 (BSP).
export const tauSchema = { type: 'integer', minimum: 0, nullable: true } as const;

const metricSchema = {
  type: 'object',
  properties: {
    iteration: { type: 'integer' },
    ms: { type: 'number' },
    logLoss: { type: 'number' },
    accuracy: { type: 'number' },
  },
} as const;

const workerSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    worker: { type: 'integer' },
    agent: { type: 'string' },
    transport: { type: 'string' },
    connected: { type: 'boolean' },
    leases: { type: 'integer' },
    tasksDone: { type: 'integer' },
    examples: { type: 'integer' },
    examplesPerSec: { type: 'number' },
    computeMs: { type: 'number' },
    waitMs: { type: 'number' },
    lastHeartbeat: { type: 'number', nullable: true },
    lastSeen: { type: 'number' },
  },
} as const;

export const jobSummarySchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    job: { type: 'integer' },
    name: { type: 'string' },
    state: { type: 'string', enum: ['running', 'paused', 'stopped', 'done'] },
    tau: { type: 'integer', nullable: true },
    reached: { type: 'boolean' },
    latest: { ...metricSchema, nullable: true },
  },
} as const;

export const jobStatusSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    ...jobSummarySchema.properties,
    app: { type: 'string' },
    shards: { type: 'integer' },
    iterations: { type: 'integer' },
    iterationsDone: { type: 'integer' },
    tasks: { type: 'object', additionalProperties: { type: 'integer' } },
    reassignments: { type: 'integer' },
    waiting: { type: 'integer' },
    workers: { type: 'array', items: workerSchema },
    metrics: { type: 'array', items: metricSchema },
    tables: { type: 'array', items: { type: 'string' } },
    model: { type: 'object', additionalProperties: { type: 'number' } },
    auditTable: { type: 'string' },
  },
} as const;

/** The usual error replies of an admin route about one job. */
export const adminErrors = { 401: errorSchema, 403: errorSchema, 404: errorSchema } as const;
