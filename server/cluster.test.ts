/**
 * The embedded cluster's node sources for the gateway (nodeSources) with fake managers: today's
 * manager (all-or-nothing `stats()`, no membership view) and one with `statsPerNode()` and
 * `nodeStates()`, which the gateway then uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeSources } from './cluster.ts';

const info = {
  ring: { version: 1, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2'] },
  addresses: { n1: { tcp: 'tcp://127.0.0.1:1' }, n2: { tcp: 'tcp://127.0.0.1:2' } },
  tables: [],
};

describe('nodeSources', () => {
  it('a manager without nodeStates: its stats() as is, no nodes; a failed stats() names every node', async () => {
    let fail = false;
    const manager = {
      info,
      stats: async () => (fail ? Promise.reject(new Error('socket closed')) : [{ node: 'n1' }, { node: 'n2' }]),
    };
    const src = nodeSources(manager as never);
    assert.equal(src.nodes, undefined);
    assert.deepEqual(await src.stats(), [{ node: 'n1' }, { node: 'n2' }]);
    fail = true;
    assert.deepEqual(await src.stats(), [
      { node: 'n1', error: 'socket closed' },
      { node: 'n2', error: 'socket closed' },
    ]);
  });

  it('a manager with statsPerNode and nodeStates: those are used', async () => {
    const views = [{ id: 'n1', state: 'suspect' as const, masters: 3, replicas: 1 }];
    const manager = {
      info,
      stats: async () => Promise.reject(new Error('not this one')),
      statsPerNode: async () => [{ node: 'n1', error: 'timeout' }],
      nodeStates() {
        assert.equal(this, manager); // called as a method
        return views;
      },
    };
    const src = nodeSources(manager as never);
    assert.deepEqual(await src.stats(), [{ node: 'n1', error: 'timeout' }]);
    assert.deepEqual(src.nodes?.(), views);
  });
});
