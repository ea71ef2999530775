/**
 * A worker across a server failover (docs/workers.md, "When the ring changes"): it follows the
 * ring the nodes push when the manager installs a new one, and re-slices what was not
 * acknowledged to the new owners. On the seeded in-memory network, with the failover done the
 * way the manager will do it: the dead node is closed, then the ring without it is installed on
 * the live nodes (ServerManager.installRing).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import type { ClusterInfo } from '../shared/cluster.ts';
import type { TabshardError } from '../shared/errors.ts';
import { encodeJson } from '../shared/protocol/control.ts';
import { MsgType } from '../shared/protocol/frame.ts';
import { Ring } from '../shared/ring.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type Conn, concatParts } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

/** Large enough to be spread over the three nodes (K·d above the ring's small-table size). */
const K = 1 << 18;
const TABLE = tableSpec(1, 'sum', 'dense', K);

/**
 * A seed that answers once (the worker's connect) with the cluster as the manager describes it,
 * then never again: whatever ring the worker has later was pushed to it by a node.
 */
function onceSeed(c: TestCluster): { seed: () => Promise<ClusterInfo>; calls: () => number } {
  let calls = 0;
  return {
    seed: () => (calls++ === 0 ? Promise.resolve(c.mgr.info) : new Promise<ClusterInfo>(() => {})),
    calls: () => calls,
  };
}

describe('a worker following ring changes', () => {
  let c: TestCluster | null = null;
  afterEach(async () => {
    await c?.close();
    c = null;
  });

  it('installs the ring the live nodes push after a failover, without asking the seed', async () => {
    const net = new MemoryNetwork({ seed: 31, maxDelay: 4 });
    c = await testCluster([TABLE], { net });
    const seed = onceSeed(c);
    const w = await Worker.connect({ seed: seed.seed, dialers: { memory: net.dialer() }, workerId: 3 });
    try {
      const t = w.table('sum');
      await w.connectAll();
      const v1 = w.currentRing;
      assert.equal(v1.version, 1);
      const next = v1.withNodes(['n1', 'n3']);
      await c.nodes[1].close();
      await c.mgr.installRing(next);
      assert.equal(await w.awaitRing(1, 5000), true);
      assert.deepEqual(w.currentRing.toJSON(), next.toJSON());
      assert.deepEqual(w.cluster.ring, next.toJSON());
      assert.deepEqual(Object.keys(w.cluster.addresses).sort(), ['n1', 'n3']);
      assert.equal(seed.calls(), 1, 'the ring came from a push: the seed was asked only at connect');
      assert.equal(w.table('sum'), t, 'tables are kept');
      assert.equal(await w.awaitRing(1, 0), true, 'at once when the ring is already newer');
      assert.equal(await w.awaitRing(2, 10), false, 'false after the wait without a newer ring');
    } finally {
      w.close();
    }
  });
});

/** A server node played by the test: it answers nothing, but sends what the test tells it to. */
class PlayedNode implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://n1';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  send(): void {}
  push(body: unknown): void {
    this.onmessage?.(concatParts(encodeJson(MsgType.RING, 0, body)));
  }
  close(): void {
    this.closed = true;
  }
}

describe('a worker receiving RING pushes', () => {
  it('installs a newer ring of known nodes in place, asks the seed about unknown ones, ignores the rest', async () => {
    const node = new PlayedNode();
    const infos: ClusterInfo[] = [
      { ring: new Ring(['n1']).toJSON(), addresses: { n1: { memory: 'memory://n1' } }, tables: [TABLE] },
      {
        ring: new Ring(['n1', 'n9'], { version: 3 }).toJSON(),
        addresses: { n1: { memory: 'memory://n1' }, n9: { memory: 'memory://n9' } },
        tables: [TABLE],
      },
    ];
    let calls = 0;
    const w = await Worker.connect({
      seed: async () => infos[Math.min(calls++, infos.length - 1)],
      dialers: { memory: { kind: 'memory', dial: async () => node } },
    });
    try {
      await w.connectAll();
      const t = w.table('sum');
      node.push({ ring: new Ring(['n1'], { version: 2 }).toJSON() });
      assert.equal(w.currentRing.version, 2, 'installed as it arrived');
      assert.equal(calls, 1);
      assert.equal(w.table('sum'), t);
      node.push({ ring: new Ring(['n1'], { version: 1 }).toJSON() }); // older: ignored
      node.push({ ring: { version: 9 } }); // not a ring: ignored
      node.push({});
      assert.equal(w.currentRing.version, 2);
      node.push({ ring: new Ring(['n1', 'n9'], { version: 3 }).toJSON() }); // n9 has no known address
      assert.equal(w.currentRing.version, 2, 'not installed before the seed answered');
      assert.equal(await w.awaitRing(2, 5000), true);
      assert.equal(calls, 2, 'the seed was asked once');
      assert.deepEqual(w.cluster.addresses.n9, { memory: 'memory://n9' });
      await w.refresh(async () => infos[0]);
      assert.equal(w.currentRing.version, 3, 'a seed behind the worker does not take its ring back');
      assert.deepEqual(Object.keys(w.cluster.addresses).sort(), ['n1', 'n9']);
    } finally {
      w.close();
    }
  });
});
