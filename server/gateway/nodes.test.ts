/**
 * The membership routes through `inject()` with a fake membership provider: the admin token is
 * required (401 without it, 403 with a wrong one, and the provider is not called), bad join
 * bodies and node ids are refused with 400 TS_ERR_INVALID_ARGUMENT before the provider sees
 * them, a join passes the manager the entry it expects (`control` = the tcp address) and answers
 * with the ring installed afterwards, and the manager's refusals keep their codes.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { TabshardError } from '../../shared/errors.ts';
import type { NodeView } from '../../shared/status.ts';
import { buildApp } from './app.ts';
import type { JoinEntry, Membership } from './nodes.ts';

const TOKEN = 'nodes-test-token';
const auth = (t = TOKEN) => ({ authorization: `Bearer ${t}` });

const TCP = 'tcp://127.0.0.1:40001';
const RTC = 'webrtc+tcp://127.0.0.1:40002';

/** A membership provider that records its calls, bumps the ring version, or fails as told. */
class FakeMembership implements Membership {
  joins: JoinEntry[] = [];
  drains: string[] = [];
  fail: TabshardError | null = null;
  constructor(private readonly bump: () => void) {}
  async join(entry: JoinEntry): Promise<void> {
    this.joins.push(entry);
    if (this.fail) throw this.fail;
    this.bump();
  }
  async drain(id: string): Promise<void> {
    this.drains.push(id);
    if (this.fail) throw this.fail;
    this.bump();
  }
}

describe('membership routes', () => {
  let version = 1;
  const views: NodeView[] = [
    { id: 'n1', state: 'up', masters: 8, replicas: 8, keyShare: null },
    { id: 'n2', state: 'draining', masters: 0, replicas: 3, keyShare: null },
  ];
  const cluster = () =>
    ({
      ring: { version, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2'] },
      addresses: { n1: { tcp: 'tcp://127.0.0.1:1' }, n2: { tcp: 'tcp://127.0.0.1:2' } },
      tables: [],
    }) as never;
  const fake = new FakeMembership(() => version++);
  let app: FastifyInstance;
  before(async () => {
    app = buildApp({
      cluster,
      stats: async () => [],
      nodes: () => views,
      membership: fake,
      adminToken: TOKEN,
    });
    await app.ready();
  });
  after(() => app.close());
  beforeEach(() => {
    fake.joins = [];
    fake.drains = [];
    fake.fail = null;
  });

  const join = (payload: unknown, headers: Record<string, string> = auth()) =>
    app.inject({ method: 'POST', url: '/api/nodes', payload: payload as object, headers });

  it('GET /api/nodes needs the token and lists every node with its state', async () => {
    const none = await app.inject('/api/nodes');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().code, 'TS_ERR_UNAUTHORIZED');
    const wrong = await app.inject({ url: '/api/nodes', headers: auth('nope') });
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.json().code, 'TS_ERR_FORBIDDEN');
    const ok = await app.inject({ url: '/api/nodes', headers: auth() });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { ring: version, nodes: views });
  });

  it('join and drain answer 401 without the token and 403 with a wrong one, calling nothing', async () => {
    const body = { id: 'n4', addresses: { tcp: TCP } };
    for (const [url, payload] of [
      ['/api/nodes', body],
      ['/api/nodes/n2/drain', undefined],
    ] as const) {
      const none = await app.inject({ method: 'POST', url, payload });
      assert.equal(none.statusCode, 401, url);
      assert.equal(none.json().code, 'TS_ERR_UNAUTHORIZED');
      const basic = await app.inject({ method: 'POST', url, payload, headers: { authorization: `Basic ${TOKEN}` } });
      assert.equal(basic.statusCode, 401, url);
      const wrong = await app.inject({ method: 'POST', url, payload, headers: auth('nope') });
      assert.equal(wrong.statusCode, 403, url);
      assert.equal(wrong.json().code, 'TS_ERR_FORBIDDEN');
    }
    assert.deepEqual([fake.joins, fake.drains], [[], []]);
  });

  it('a join passes the entry on, control = the tcp address, and answers with the new ring', async () => {
    const v = version;
    const res = await join({ id: 'n4', addresses: { tcp: TCP, webrtc: RTC } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { node: 'n4', ring: v + 1 });
    assert.deepEqual(fake.joins, [{ id: 'n4', addresses: { tcp: TCP, webrtc: RTC }, control: TCP }]);
    // tcp alone is enough; host names, the widest id and port 65535 are fine.
    const id = `A_z-9${'x'.repeat(59)}`;
    const only = await join({ id, addresses: { tcp: 'tcp://node-4.example.org:65535' } });
    assert.equal(only.statusCode, 200, only.body);
    assert.deepEqual(fake.joins[1], {
      id,
      addresses: { tcp: 'tcp://node-4.example.org:65535' },
      control: 'tcp://node-4.example.org:65535',
    });
  });

  it('bad join bodies are refused with 400 TS_ERR_INVALID_ARGUMENT before the manager sees them', async () => {
    const bodies: unknown[] = [
      {},
      [],
      { id: 'n4' },
      { addresses: { tcp: TCP } },
      { id: 'n4', addresses: {} },
      { id: 'n4', addresses: { webrtc: RTC } },
      { id: 'n4', addresses: 'tcp://127.0.0.1:40001' },
      { id: '', addresses: { tcp: TCP } },
      { id: 'x'.repeat(65), addresses: { tcp: TCP } },
      { id: 'n 4', addresses: { tcp: TCP } },
      { id: 'n/4', addresses: { tcp: TCP } },
      { id: 'n4é', addresses: { tcp: TCP } },
      { id: 'n4', addresses: { tcp: 'http://127.0.0.1:40001' } },
      { id: 'n4', addresses: { tcp: '127.0.0.1:40001' } },
      { id: 'n4', addresses: { tcp: 'tcp://127.0.0.1' } },
      { id: 'n4', addresses: { tcp: 'tcp://:40001' } },
      { id: 'n4', addresses: { tcp: 'tcp://127.0.0.1:0' } },
      { id: 'n4', addresses: { tcp: 'tcp://127.0.0.1:65536' } },
      { id: 'n4', addresses: { tcp: 'tcp://127.0.0.1:40001/x' } },
      { id: 'n4', addresses: { tcp: 'tcp://[::1]:40001' } },
      { id: 'n4', addresses: { tcp: RTC } },
      { id: 'n4', addresses: { tcp: TCP, webrtc: TCP } },
      { id: 'n4', addresses: { tcp: TCP, webrtc: 'webrtc+tcp://127.0.0.1:99999' } },
      { id: 'n4', addresses: { tcp: TCP, ws: 'ws://127.0.0.1:40003' } },
      { id: 'n4', addresses: { tcp: TCP, memory: 'memory://n4' } },
      { id: 'n4', addresses: { tcp: TCP, constructor: 'tcp://127.0.0.1:1' } },
    ];
    for (const b of bodies) {
      const res = await join(b);
      assert.equal(res.statusCode, 400, `${JSON.stringify(b)} → ${res.body}`);
      assert.equal(res.json().code, 'TS_ERR_INVALID_ARGUMENT', JSON.stringify(b));
      assert.equal(typeof res.json().message, 'string');
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/api/nodes',
      payload: '{"id":',
      headers: { ...auth(), 'content-type': 'application/json' },
    });
    assert.equal(notJson.statusCode, 400);
    assert.equal(notJson.json().code, 'TS_ERR_INVALID_ARGUMENT');
    assert.deepEqual(fake.joins, []);
  });

  it("the manager's refusals keep their codes: a duplicate id 400, an unreachable node 503", async () => {
    fake.fail = new TabshardError('TS_ERR_INVALID_ARGUMENT', 'node n1 is already a member');
    const dup = await join({ id: 'n1', addresses: { tcp: TCP } });
    assert.equal(dup.statusCode, 400);
    assert.deepEqual(dup.json(), {
      code: 'TS_ERR_INVALID_ARGUMENT',
      message: 'invalid argument: node n1 is already a member',
    });
    fake.fail = new TabshardError('TS_ERR_CONNECT_FAILED', TCP);
    const gone = await join({ id: 'n5', addresses: { tcp: TCP } });
    assert.equal(gone.statusCode, 503);
    assert.equal(gone.json().code, 'TS_ERR_CONNECT_FAILED');
    assert.equal(fake.joins.length, 2);
  });

  it('a drain calls the manager with the id and answers with the new ring; bad ids are refused', async () => {
    const v = version;
    const res = await app.inject({ method: 'POST', url: '/api/nodes/n2/drain', headers: auth() });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { node: 'n2', ring: v + 1 });
    assert.deepEqual(fake.drains, ['n2']);
    for (const id of ['n%204', 'x'.repeat(65), 'n4%2F5', 'n.4']) {
      const bad = await app.inject({ method: 'POST', url: `/api/nodes/${id}/drain`, headers: auth() });
      assert.equal(bad.statusCode, 400, `${id} → ${bad.body}`);
      assert.equal(bad.json().code, 'TS_ERR_INVALID_ARGUMENT');
    }
    assert.deepEqual(fake.drains, ['n2']);
    fake.fail = new TabshardError('TS_ERR_INVALID_ARGUMENT', 'n9 is not a live node');
    const unknown = await app.inject({ method: 'POST', url: '/api/nodes/n9/drain', headers: auth() });
    assert.equal(unknown.statusCode, 400);
    assert.equal(unknown.json().code, 'TS_ERR_INVALID_ARGUMENT');
    assert.deepEqual(fake.drains, ['n2', 'n9']);
  });

  it('the OpenAPI description has the routes, their schemas and the bearer scheme', async () => {
    const doc = (await app.inject('/api/openapi.json')).json();
    const post = doc.paths['/api/nodes'].post;
    assert.deepEqual(post.security, [{ bearer: [] }]);
    const body = post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required, ['id', 'addresses']);
    assert.equal(body.properties.id.pattern, '^[A-Za-z0-9_-]{1,64}$');
    assert.deepEqual(body.properties.addresses.required, ['tcp']);
    for (const code of ['200', '400', '401', '403', '503']) assert.ok(post.responses[code], `POST /api/nodes ${code}`);
    assert.deepEqual(post.responses['200'].content['application/json'].schema.required, ['node', 'ring']);
    const drain = doc.paths['/api/nodes/{id}/drain'].post;
    assert.deepEqual(drain.security, [{ bearer: [] }]);
    assert.ok(drain.responses['200'] && drain.responses['400']);
    assert.deepEqual(doc.paths['/api/nodes'].get.security, [{ bearer: [] }]);
  });
});

describe('membership routes without a provider', () => {
  it('are not offered', async () => {
    const app = buildApp({ cluster: () => ({}) as never, stats: async () => [], adminToken: TOKEN });
    try {
      const join = await app.inject({ method: 'POST', url: '/api/nodes', payload: {}, headers: auth() });
      assert.equal(join.statusCode, 404);
      const list = await app.inject({ url: '/api/nodes', headers: auth() });
      assert.equal(list.statusCode, 404);
    } finally {
      await app.close();
    }
  });
});
