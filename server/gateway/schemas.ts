/**
 * JSON schemas shared by the gateway's routes: they validate requests, and @fastify/swagger turns
 * them into the OpenAPI description (/api/openapi.json). Response schemas of large views keep
 * `additionalProperties: true` so the serializer never drops a field the schema does not list.
 */
import { NODE_STATES } from '../../shared/status.ts';

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
    tasksRefused: { type: 'integer' },
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
    backups: {
      type: 'object',
      description: 'With backup tasks on: backup leases granted, and how many finished their task first',
      properties: { granted: { type: 'integer' }, won: { type: 'integer' } },
    },
    waiting: { type: 'integer' },
    workers: { type: 'array', items: workerSchema },
    metrics: { type: 'array', items: metricSchema },
    tables: { type: 'array', items: { type: 'string' } },
    model: { type: 'object', additionalProperties: { type: 'number' } },
    about: { type: 'string' },
    insight: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        rows: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
      },
    },
    auditTable: { type: 'string' },
  },
} as const;

/** The usual error replies of an admin route about one job. */
export const adminErrors = { 401: errorSchema, 403: errorSchema, 404: errorSchema } as const;

/** A server node's id: 1–64 characters of [A-Za-z0-9_-]. */
export const nodeIdSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'e.g. n4' } as const;

export const nodeParams = { type: 'object', required: ['id'], properties: { id: nodeIdSchema } } as const;

// Host names and IPv4 addresses (the TCP dialer takes no IPv6 literal); the port is checked to be 1–65535 too.
const HOST_PORT = '([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$';
export const TCP_ADDRESS = new RegExp(`^tcp://${HOST_PORT}`);
export const WEBRTC_ADDRESS = new RegExp(`^webrtc\\+tcp://${HOST_PORT}`);

/**
 * What `POST /api/nodes` takes: the joining node's id and where it listens (what
 * `tabshard server` prints in its `listening` line). The manager dials `addresses.tcp`.
 */
export const joinBodySchema = {
  type: 'object',
  required: ['id', 'addresses'],
  additionalProperties: false,
  properties: {
    id: nodeIdSchema,
    addresses: {
      type: 'object',
      description:
        'Where the node listens, by transport: tcp (required; the manager dials it) and webrtc. Others are refused.',
      required: ['tcp'],
      // Not `additionalProperties: false`: fastify's Ajv would drop an unknown transport silently; the route refuses it.
      properties: {
        tcp: { type: 'string', pattern: TCP_ADDRESS.source, description: 'e.g. tcp://127.0.0.1:40001' },
        webrtc: { type: 'string', pattern: WEBRTC_ADDRESS.source, description: 'e.g. webrtc+tcp://127.0.0.1:40002' },
      },
    },
  },
} as const;

/** One server node as the manager sees it (shared/status.ts, NodeView). */
export const nodeViewSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: [...NODE_STATES] },
    masters: { type: 'integer', description: 'Key ranges, summed over tables, it is the master of' },
    replicas: { type: 'integer', description: 'Key ranges, summed over tables, it holds a replica of' },
    keyShare: {
      type: ['number', 'null'],
      description: 'Share of the key space it masters: the mean over the tables the ring spreads (null: none)',
    },
  },
} as const;

/** What a finished join or drain answers: the node and the ring version now installed. */
export const membershipReplySchema = {
  type: 'object',
  required: ['node', 'ring'],
  properties: { node: { type: 'string' }, ring: { type: 'integer', description: 'The ring version now installed' } },
} as const;

/** The usual error replies of an admin route that takes a body (bad input, no or a wrong token). */
export const inputErrors = { 400: errorSchema, 401: errorSchema, 403: errorSchema } as const;
