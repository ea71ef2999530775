/**
 * /metrics and the node sources with fake providers (no network): every known node gets
 * tabshard_node_up, 0 for one whose STATS failed or that is dead and 1 for the others; its state
 * as a Prometheus enum (one series per state, 1 for its own); its key-range counts by role.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeView } from '../../shared/status.ts';
import { buildApp, type GatewayDeps } from './app.ts';
import { readNodes } from './metrics.ts';

const CLUSTER = {
  ring: { version: 1, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2', 'n3'] },
  addresses: { n1: { tcp: 'tcp://127.0.0.1:1' }, n2: { tcp: 'tcp://127.0.0.1:2' }, n3: { tcp: 'tcp://127.0.0.1:3' } },
  tables: [],
};

const stats = (node: string, keys: number) => ({
  node,
  connections: 1,
  frames: 3,
  errors: 0,
  tables: [
    { job: 1, id: 1, name: 'weights', kind: 'sparse', keys, bytes: keys * 12, pushes: 2, pulls: 1, bounded: keys % 3 },
  ],
  replication: { copiesPending: keys % 5, copyBytes: keys * 40 },
  access: { caps: 4, refused: { TS_ERR_CAPABILITY_REQUIRED: keys, TS_ERR_KEYS_OUTSIDE_TASK: 2 } },
});

/** Scrapes /metrics of a gateway built from these sources into `series → value`. */
async function scrape(deps: Pick<GatewayDeps, 'stats' | 'nodes'>): Promise<Map<string, number>> {
  const app = buildApp({ cluster: () => CLUSTER as never, adminToken: 't', ...deps });
  try {
    const res = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer t' } });
    assert.equal(res.statusCode, 200);
    const out = new Map<string, number>();
    for (const line of res.body.split('\n')) {
      const m = /^(tabshard_node_\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (m) out.set(m[1], Number(m[2]));
    }
    return out;
  } finally {
    await app.close();
  }
}

/** The series of `metric` whose labels include `node="…"`, as `labels → value`. */
function of(series: Map<string, number>, metric: string, node: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of series)
    if (k.startsWith(`${metric}{`) && k.includes(`node="${node}"`)) out[k.slice(metric.length)] = v;
  return out;
}

const VIEWS: NodeView[] = [
  { id: 'n1', state: 'up', masters: 12, replicas: 24, keyShare: null },
  { id: 'n2', state: 'suspect', masters: 12, replicas: 24, keyShare: null },
  { id: 'n3', state: 'dead', masters: 0, replicas: 0, keyShare: null },
  { id: 'n4', state: 'joining', masters: 0, replicas: 3, keyShare: null },
];

describe('/metrics node series', () => {
  it('node_up is 0 for a node whose STATS failed and for a dead one, 1 for the others', async () => {
    const s = await scrape({
      stats: async () => [stats('n1', 100), { node: 'n2', error: 'connect ECONNREFUSED' }, stats('n3', 7)],
      nodes: () => VIEWS,
    });
    assert.deepEqual(
      ['n1', 'n2', 'n3', 'n4'].map((n) => s.get(`tabshard_node_up{node="${n}"}`)),
      [1, 0, 0, 0],
    );
    // Load series only for nodes that answered (n3 is dead but did answer); the old names stay.
    assert.equal(s.get('tabshard_node_keys{node="n1",job="1",table="weights"}'), 100);
    assert.equal(s.get('tabshard_node_keys{node="n3",job="1",table="weights"}'), 7);
    assert.deepEqual(of(s, 'tabshard_node_keys', 'n2'), {});
    assert.equal(s.get('tabshard_node_connections{node="n1"}'), 1);
    // Range copies (a join, drain or failover) as the node's STATS say.
    assert.equal(s.get('tabshard_node_copies_pending{node="n3"}'), 2);
    assert.equal(s.get('tabshard_node_copy_bytes{node="n1"}'), 4000);
    // What each node refused: capability refusals by code, pushes over a table's bounds.
    assert.deepEqual(of(s, 'tabshard_node_refused', 'n1'), {
      '{node="n1",code="TS_ERR_CAPABILITY_REQUIRED"}': 100,
      '{node="n1",code="TS_ERR_KEYS_OUTSIDE_TASK"}': 2,
    });
    assert.equal(s.get('tabshard_node_bounded{node="n3",job="1",table="weights"}'), 1);
  });

  it('node_state is an enum: one series per state, 1 for the node’s own', async () => {
    const s = await scrape({
      stats: async () => [stats('n1', 1), { node: 'n2', error: 'timeout' }, stats('n3', 1)],
      nodes: () => VIEWS,
    });
    const states = ['up', 'suspect', 'dead', 'joining', 'draining'];
    for (const v of VIEWS)
      assert.deepEqual(
        of(s, 'tabshard_node_state', v.id),
        Object.fromEntries(states.map((st) => [`{node="${v.id}",state="${st}"}`, st === v.state ? 1 : 0])),
        v.id,
      );
  });

  it('node_ranges counts master and replica ranges per node', async () => {
    const s = await scrape({ stats: async () => [stats('n1', 1)], nodes: () => VIEWS });
    assert.deepEqual(of(s, 'tabshard_node_ranges', 'n1'), {
      '{node="n1",role="master"}': 12,
      '{node="n1",role="replica"}': 24,
    });
    assert.deepEqual(of(s, 'tabshard_node_ranges', 'n4'), {
      '{node="n4",role="master"}': 0,
      '{node="n4",role="replica"}': 3,
    });
  });

  it('a stats() that fails as a whole: every known node is there with node_up 0', async () => {
    const s = await scrape({
      stats: async () => Promise.reject(new Error('manager closed')),
      nodes: () => VIEWS,
    });
    assert.deepEqual(
      ['n1', 'n2', 'n3', 'n4'].map((n) => s.get(`tabshard_node_up{node="${n}"}`)),
      [0, 0, 0, 0],
    );
    // Without nodes(), the ring's nodes are the known ones.
    const ring = await scrape({ stats: async () => Promise.reject(new Error('manager closed')) });
    assert.deepEqual(
      ['n1', 'n2', 'n3'].map((n) => ring.get(`tabshard_node_up{node="${n}"}`)),
      [0, 0, 0],
    );
  });

  it('without nodes(): every node is taken as up, node_up follows STATS, no range counts', async () => {
    const s = await scrape({ stats: async () => [stats('n1', 5), stats('n2', 5), { node: 'n3', error: 'refused' }] });
    assert.deepEqual(
      ['n1', 'n2', 'n3'].map((n) => s.get(`tabshard_node_up{node="${n}"}`)),
      [1, 1, 0],
    );
    assert.equal(s.get('tabshard_node_state{node="n3",state="up"}'), 1);
    assert.equal(s.get('tabshard_node_state{node="n3",state="dead"}'), 0);
    assert.deepEqual(of(s, 'tabshard_node_ranges', 'n1'), {});
  });
});

describe('readNodes', () => {
  it('lists every known node once, views first, then STATS entries, then the ring', async () => {
    const rows = await readNodes({
      stats: async () => [stats('n9', 1), { node: 'n2', error: 'timeout' }, { junk: true }, null],
      nodes: () => [{ id: 'n2', state: 'draining', masters: 1, replicas: 2, keyShare: null }],
      cluster: () => CLUSTER as never,
    });
    assert.deepEqual(
      rows.map((r) => [r.node, r.state, r.up, r.error, r.masters]),
      [
        ['n2', 'draining', false, 'timeout', 1],
        ['n9', 'up', true, null, null],
        ['n1', 'up', false, 'no STATS reply', null],
        ['n3', 'up', false, 'no STATS reply', null],
      ],
    );
  });

  it('a nodes() that throws is no view: states default to up', async () => {
    const rows = await readNodes({
      stats: async () => [stats('n1', 1)],
      nodes: () => {
        throw new Error('not started');
      },
    });
    assert.deepEqual(
      rows.map((r) => [r.node, r.state, r.up]),
      [['n1', 'up', true]],
    );
  });
});
