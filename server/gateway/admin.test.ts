/**
 * The admin surface through `inject()` and a real port: every mutating route the app registers
 * (found by fastify's onRoute hook, not listed by hand) refuses a request without the token (401)
 * and with a wrong one (403); the console stream needs the token and shows a τ change within
 * the snapshot interval; /metrics and the OpenAPI description cover what they should.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { JobDriver, JobListener, JobMetric } from '../jobs/driver.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { isMutating } from './admin-auth.ts';
import { buildApp } from './app.ts';

const TOKEN = 'test-token-123';
const auth = (t = TOKEN) => ({ authorization: `Bearer ${t}` });

const CLUSTER = {
  ring: { version: 1, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2'] },
  addresses: { n1: { tcp: 'tcp://127.0.0.1:1' }, n2: { tcp: 'tcp://127.0.0.1:2' } },
  tables: [],
};

const STATS = [
  {
    node: 'n1',
    connections: 2,
    frames: 10,
    errors: 0,
    tables: [{ job: 1, id: 1, name: 'weights', kind: 'sparse', keys: 100, bytes: 1200, pushes: 7, pulls: 3 }],
  },
  {
    node: 'n2',
    connections: 1,
    frames: 5,
    errors: 0,
    tables: [{ job: 1, id: 1, name: 'weights', kind: 'sparse', keys: 50, bytes: 600, pushes: 4, pulls: 2 }],
  },
];

/** A job with a real scheduler and no data: what the gateway reads of a JobDriver. */
function fakeJob(job: number, name: string): JobDriver {
  const listeners = new Set<JobListener>();
  const metrics: JobMetric[] = [{ iteration: 0, ms: 100, logLoss: 0.3, accuracy: 0.9 }];
  const scheduler = new Scheduler(
    { job, name, app: 'logreg', shards: 4, iterations: 10, tau: 0, leaseMs: 4000, heartbeatMs: 1000 },
    {
      fence: async () => {},
      log: (ev) => {
        for (const l of listeners) l.log?.(ev);
      },
    },
  );
  return {
    app: { job, tables: [{ name: 'weights' }], shards: [] },
    metrics,
    scheduler,
    reached: false,
    latest: metrics.at(-1),
    status: () => ({ ...scheduler.status(), reached: false, target: { accuracy: 0.96 }, metrics }),
    listen(l: JobListener) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  } as unknown as JobDriver;
}

/** Fills a route's URL parameters with 1. */
const concrete = (url: string) => url.replace(/:[A-Za-z]+/g, '1');

describe('admin surface', () => {
  const routes: RouteOptions[] = [];
  const jobs = [fakeJob(1, 'demo')];
  let app: FastifyInstance;
  before(async () => {
    app = buildApp({
      cluster: () => CLUSTER as never,
      stats: async () => STATS,
      nodes: () => [
        { id: 'n1', state: 'up', masters: 4, replicas: 4, keyShare: null },
        { id: 'n2', state: 'up', masters: 4, replicas: 4, keyShare: null },
      ],
      membership: {
        join: async () => Promise.reject(new Error('no joining in this test')),
        drain: async () => Promise.reject(new Error('no draining in this test')),
      },
      dialer: { kind: 'tcp', dial: async () => Promise.reject(new Error('no dialing in this test')) },
      assets: {},
      jobs: () => jobs,
      createJob: async () => Promise.reject(new Error('no jobs in this test')),
      adminToken: TOKEN,
      consoleIntervalMs: 100,
      onRoute: (r) => routes.push(r),
    });
    await app.ready();
  });
  after(() => app.close());

  it('every mutating route answers 401 without the token and 403 with a wrong one', async () => {
    const mutating = routes.filter((r) => isMutating(r.method));
    // The routes known today; more are fine (and guarded), fewer means the walk lost some.
    assert.ok(mutating.length >= 8, mutating.map((r) => `${r.method} ${r.url}`).join(', '));
    for (const r of mutating)
      for (const method of [r.method].flat()) {
        const url = concrete(r.url!);
        const none = await app.inject({ method, url, payload: {} });
        assert.equal(none.statusCode, 401, `${method} ${url}`);
        assert.equal(none.json().code, 'TS_ERR_UNAUTHORIZED');
        const basic = await app.inject({ method, url, payload: {}, headers: { authorization: `Basic ${TOKEN}` } });
        assert.equal(basic.statusCode, 401, `${method} ${url} with a Basic header`);
        const wrong = await app.inject({ method, url, payload: {}, headers: auth('nope') });
        assert.equal(wrong.statusCode, 403, `${method} ${url}`);
        assert.equal(wrong.json().code, 'TS_ERR_FORBIDDEN');
      }
    assert.equal(jobs[0].scheduler.status().state, 'running');
  });

  it('the controls work with the token', async () => {
    const tau = await app.inject({ method: 'PUT', url: '/api/jobs/1/tau', payload: { tau: 2 }, headers: auth() });
    assert.deepEqual(tau.json(), { tau: 2 });
    const asp = await app.inject({ method: 'PUT', url: '/api/jobs/1/tau', payload: { tau: null }, headers: auth() });
    assert.deepEqual(asp.json(), { tau: null });
    assert.equal(jobs[0].scheduler.status().tau, null);
    const bad = await app.inject({ method: 'PUT', url: '/api/jobs/1/tau', payload: { tau: -1 }, headers: auth() });
    assert.equal(bad.json().code, 'TS_ERR_INVALID_ARGUMENT');
    const pause = await app.inject({ method: 'POST', url: '/api/jobs/1/pause', headers: auth() });
    assert.deepEqual(pause.json(), { state: 'paused' });
    const resume = await app.inject({ method: 'POST', url: '/api/jobs/1/resume', headers: auth() });
    assert.deepEqual(resume.json(), { state: 'running' });
    const missing = await app.inject({ method: 'POST', url: '/api/jobs/9/pause', headers: auth() });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'TS_ERR_UNKNOWN_JOB');
  });

  it('GET /api/apps lists the registered applications; POST /api/jobs refuses any other', async () => {
    const apps = (await app.inject('/api/apps')).json().apps as Array<{ name: string; summary: string }>;
    assert.deepEqual(
      apps.map((a) => a.name),
      ['cms', 'cnn', 'lda', 'logreg', 'textnn'],
    );
    assert.ok(apps.every((a) => a.summary.length > 0));
    const res = await app.inject({ method: 'POST', url: '/api/jobs', payload: { app: 'resnet' }, headers: auth() });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().code, 'TS_ERR_INVALID_ARGUMENT');
    assert.match(res.json().message, /app/);
  });

  it('the console stream needs the token', async () => {
    const none = await app.inject('/api/console/stream');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().code, 'TS_ERR_UNAUTHORIZED');
    const wrong = await app.inject({ url: '/api/console/stream', headers: auth('x') });
    assert.equal(wrong.statusCode, 403);
  });

  it('the console stream sends hello, snapshots, and a τ change within the snapshot interval', async () => {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const ctl = new AbortController();
    const res = await fetch(`${base}/api/console/stream`, { headers: auth(), signal: ctl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const events = sseEvents(res.body!);
    try {
      const hello = await next(events, 'hello');
      assert.deepEqual(hello.cluster.ring.nodes, ['n1', 'n2']);
      assert.equal(hello.metrics[1].length, 1);
      const nodes = await until(events, (s) => s.nodes.length === 2);
      assert.deepEqual(
        nodes.nodes.map((n: { node: string; keys: number }) => [n.node, n.keys]),
        [
          ['n1', 100],
          ['n2', 50],
        ],
      );
      const t0 = performance.now();
      jobs[0].scheduler.setTau(5);
      const seen = await until(events, (s) => s.jobs[0].tau === 5);
      const ms = performance.now() - t0;
      assert.equal(seen.jobs[0].name, 'demo');
      assert.ok(ms < 1000, `the τ change reached the stream after ${ms} ms`);
    } finally {
      ctl.abort();
    }
  });

  it('/metrics, /api/stats and /api/cluster need the token', async () => {
    for (const url of ['/metrics', '/api/stats', '/api/cluster']) {
      assert.equal((await app.inject(url)).statusCode, 401, url);
      assert.equal((await app.inject({ url, headers: auth('wrong') })).statusCode, 403, url);
      assert.equal((await app.inject({ url, headers: auth() })).statusCode, 200, url);
    }
    assert.deepEqual((await app.inject({ url: '/api/cluster', headers: auth() })).json().addresses, CLUSTER.addresses);
  });

  it('/metrics has node load, workers, tasks and the held-out metrics', async () => {
    const res = await app.inject({ url: '/metrics', headers: auth() });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    const text = res.body;
    assert.match(text, /^tabshard_node_keys\{node="n1",job="1",table="weights"\} 100$/m);
    assert.match(text, /^tabshard_node_pushes\{node="n2",job="1",table="weights"\} 4$/m);
    assert.match(text, /^tabshard_job_tasks\{job="1",state="pending"\} 40$/m);
    assert.match(text, /^tabshard_job_heldout_accuracy\{job="1"\} 0.9$/m);
    assert.match(text, /^tabshard_job_workers\{job="1",state="connected"\} 0$/m);
    assert.match(text, /^# TYPE tabshard_job_reassignments gauge$/m);
  });

  it('/api/openapi.json describes every route, with the bearer scheme on the guarded ones', async () => {
    const doc = (await app.inject('/api/openapi.json')).json();
    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    const tau = doc.paths['/api/jobs/{job}/tau'].put;
    assert.deepEqual(tau.security, [{ bearer: [] }]);
    assert.ok(tau.requestBody.content['application/json'].schema.properties.tau);
    assert.ok(tau.responses['401']);
    for (const r of routes) {
      // OpenAPI 3.0 cannot describe WebSockets: those are named in the description's text.
      if (r.method === 'HEAD' || r.url === '/api/openapi.json' || (r.schema as { hide?: boolean })?.hide) continue;
      const path = r.url!.replace(/:([A-Za-z]+)/g, '{$1}');
      for (const m of [r.method].flat())
        assert.ok(doc.paths[path]?.[m.toLowerCase()], `${m} ${path} is not in the OpenAPI description`);
    }
  });
});

// biome-ignore lint/suspicious/noExplicitAny: parsed test JSON, read field by field
type Event = { type: string } & Record<string, any>;

/** Parses a server-sent event stream into its JSON data payloads. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<Event> {
  const dec = new TextDecoder();
  const reader = body.getReader();
  let buf = '';
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) return;
    buf += dec.decode(chunk, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data) yield JSON.parse(data);
      i = buf.indexOf('\n\n');
    }
  }
}

async function next(events: AsyncGenerator<Event>, type: string): Promise<Event> {
  for (;;) {
    const { value, done } = await events.next();
    if (done) throw new Error(`the stream ended before a ${type} event`);
    if (value.type === type) return value;
  }
}

async function until(events: AsyncGenerator<Event>, pred: (s: Event) => boolean): Promise<Event> {
  for (;;) {
    const s = await next(events, 'snapshot');
    if (pred(s)) return s;
  }
}
