/**
 * The console feed's node rows with fake sources (no network): each known node has its state and
 * key-range counts; one that stops answering stays listed with its last numbers, marked not live
 * (`up` false, `error`, the time they were reported), and without a pushes/s rate.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { NodeLoad, NodeView } from '../../shared/status.ts';
import { ConsoleFeed, type ConsoleMessage } from './console-feed.ts';

const CLUSTER = {
  ring: { version: 1, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2'] },
  addresses: { n1: { tcp: 'tcp://127.0.0.1:1' }, n2: { tcp: 'tcp://127.0.0.1:2' } },
  tables: [],
};

const stats = (node: string, keys: number, pushes: number) => ({
  node,
  connections: 2,
  frames: 9,
  errors: 0,
  tables: [{ job: 1, id: 1, name: 'weights', kind: 'sparse', keys, bytes: keys * 12, pushes, pulls: 0 }],
});

describe('console feed node rows', () => {
  // What the fakes answer now; samples (the feed's own timer included) read it.
  let answers: unknown[] = [];
  let views: NodeView[] = [];
  const feed = new ConsoleFeed({
    cluster: () => CLUSTER as never,
    stats: async () => answers,
    nodes: () => views,
    jobs: () => [],
    minIntervalMs: 0,
    sampleMs: 3_600_000,
  });
  const stop = feed.watch(() => {});
  after(() => {
    stop();
    feed.close();
  });

  /** The node rows of a fresh snapshot after one more sample. */
  async function rows(): Promise<Map<string, NodeLoad>> {
    await feed.sample();
    let snap: ConsoleMessage | undefined;
    feed.watch((m) => {
      if (m.type === 'snapshot') snap = m;
    })();
    assert.equal(snap?.type, 'snapshot');
    return new Map((snap as Extract<ConsoleMessage, { type: 'snapshot' }>).nodes.map((n) => [n.node, n]));
  }

  it('shows each node’s state and its master and replica range counts', async () => {
    answers = [stats('n1', 100, 10), stats('n2', 50, 4)];
    views = [
      { id: 'n1', state: 'up', masters: 8, replicas: 8, keyShare: null },
      { id: 'n2', state: 'joining', masters: 0, replicas: 8, keyShare: null },
    ];
    const r = await rows();
    assert.deepEqual(
      [...r.values()].map((n) => [n.node, n.state, n.up, n.masters, n.replicas, n.keys, n.error]),
      [
        ['n1', 'up', true, 8, 8, 100, null],
        ['n2', 'joining', true, 0, 8, 50, null],
      ],
    );
    assert.equal(typeof r.get('n1')!.sampledAt, 'number');
  });

  it('a node that stops answering keeps its last numbers, marked not live; a dead one is down', async () => {
    const before = await rows();
    answers = [stats('n1', 120, 30), { node: 'n2', error: 'connect ECONNREFUSED' }];
    views = [
      { id: 'n1', state: 'up', masters: 16, replicas: 0, keyShare: null },
      { id: 'n2', state: 'dead', masters: 0, replicas: 0, keyShare: null },
      { id: 'n3', state: 'joining', masters: 0, replicas: 0, keyShare: null },
    ];
    await new Promise((r) => setTimeout(r, 5)); // a later clock for n1's fresh sample
    const r = await rows();
    const n1 = r.get('n1')!;
    assert.deepEqual([n1.up, n1.state, n1.keys, n1.masters, n1.error], [true, 'up', 120, 16, null]);
    assert.ok(n1.sampledAt! > before.get('n1')!.sampledAt!);
    assert.ok(n1.pushesPerSec > 0);
    const n2 = r.get('n2')!;
    assert.deepEqual(
      [n2.up, n2.state, n2.error, n2.keys, n2.connections, n2.pushesPerSec],
      [false, 'dead', 'connect ECONNREFUSED', 50, 2, 0],
    );
    assert.equal(n2.sampledAt, before.get('n2')!.sampledAt, 'the numbers are the ones it last reported');
    // Known only from the membership view: listed, never answered.
    const n3 = r.get('n3')!;
    assert.deepEqual([n3.up, n3.state, n3.sampledAt, n3.keys], [false, 'joining', null, 0]);
  });

  it('a node that answers again is live again, its rate over the gap', async () => {
    answers = [stats('n1', 120, 30), stats('n2', 60, 14)];
    views = [
      { id: 'n1', state: 'up', masters: 8, replicas: 8, keyShare: null },
      { id: 'n2', state: 'up', masters: 8, replicas: 8, keyShare: null },
    ];
    const n2 = (await rows()).get('n2')!;
    assert.deepEqual([n2.up, n2.error, n2.keys], [true, null, 60]);
    assert.ok(n2.pushesPerSec > 0, 'pushes since its last answer count');
  });
});
