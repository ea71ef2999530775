/**
 * FORWARD and MIGRATE are for the server group only (PROTOCOL.md §5.3): from a connection that
 * did not say HELLO as a server with the token, or from a node the ring does not name, they are
 * refused with a code and change nothing; malformed ones too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeJson } from '../../shared/protocol/control.ts';
import { MsgType } from '../../shared/protocol/frame.ts';
import { encodeForward, encodeMigrateClear, encodeMigrateRecords } from '../../shared/protocol/replication.ts';
import { Ring } from '../../shared/ring.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { codeOf } from '../scheduler/testkit.ts';
import { type TestCluster, tableSpec, testCluster } from './testkit.ts';

const TOKEN = 'group-secret';
const TABLE = tableSpec(1, 's', 'sparse', 2 ** 30, 1, 'sum');
/** Three keys n1 replicates, and the node just before it in their chain (the only one n1 takes FORWARDs of them from). */
let KEYS = new Float64Array(0);
let MASTER = '';

describe('FORWARD and MIGRATE from outside the group', () => {
  const net = new MemoryNetwork({ seed: 4, maxDelay: 2 });
  let c: TestCluster;
  before(async () => {
    c = await testCluster([TABLE], { net, adminToken: TOKEN, replicas: 1 });
    const r = Ring.fromJSON(c.mgr.info.ring)
      .chainRanges(TABLE, 1)
      .ranges.find((x) => x.chain[1] === 'n1' && x.end - x.begin >= 3)!;
    KEYS = Float64Array.of(r.begin, r.begin + 1, r.begin + 2);
    MASTER = r.chain[0];
  });
  after(() => c.close());

  const peer = async (hello?: Record<string, unknown>) => {
    const p = new RpcPeer(await net.dialer().dial('memory://n1'));
    if (hello) await p.call((id) => encodeJson(MsgType.HELLO, id, hello));
    return p;
  };
  const forward = (p: RpcPeer, rows = Float32Array.of(5, 5, 5)) =>
    p.call((requestId) =>
      encodeForward({ requestId, job: 0, table: 1, steps: 1, task: null, keys: { kind: 'list', keys: KEYS }, rows }),
    );
  const stored = () => c.nodes[0].stats().tables[0].keys;

  it('refuses them without a server HELLO, with a wrong token, from a node not in the ring, and from one not just before it in the chain', async () => {
    const anon = await peer();
    assert.equal(await codeOf(forward(anon)), 'TS_ERR_FORBIDDEN');
    assert.equal(await codeOf(anon.call((id) => encodeMigrateClear(id, 0, 1, [[0, 10]]))), 'TS_ERR_FORBIDDEN');
    const worker = await peer({ role: 'worker' });
    assert.equal(await codeOf(forward(worker)), 'TS_ERR_FORBIDDEN');
    assert.equal(await codeOf(peer({ role: 'server', node: 'n2', token: 'guess' })), 'TS_ERR_FORBIDDEN');
    const stranger = await peer({ role: 'server', node: 'n9', token: TOKEN });
    assert.equal(await codeOf(forward(stranger)), 'TS_ERR_NOT_OWNER');
    const third = await peer({ role: 'server', node: ['n2', 'n3'].find((n) => n !== MASTER)!, token: TOKEN });
    assert.equal(
      await codeOf(forward(third)),
      'TS_ERR_NOT_OWNER',
      'a group member that does not precede n1 in these keys',
    );
    third.close();
    assert.equal(stored(), 0, 'nothing was written');
    for (const p of [anon, worker, stranger]) p.close();
  });

  it('a group member gets coded errors for malformed ones, and nothing changes', async () => {
    const n2 = await peer({ role: 'server', node: MASTER, token: TOKEN });
    assert.equal(await codeOf(forward(n2, Float32Array.of(1, 2))), 'TS_ERR_VALUE_LENGTH');
    assert.equal(
      await codeOf(
        n2.call((id) => encodeMigrateRecords(id, 0, 1, { records: { tasks: [[1, -1, []]], workers: [] }, steps: 0 })),
      ),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      await codeOf(n2.call((id) => encodeMigrateRecords(id, 0, 1, { records: { tasks: [], workers: [] }, steps: -3 }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(await codeOf(n2.call((id) => encodeMigrateClear(id, 0, 9, [[0, 10]]))), 'TS_ERR_UNKNOWN_TABLE');
    assert.equal(stored(), 0);
    // A well-formed one is written as it is (no updater runs on a replica).
    await forward(n2);
    assert.equal(stored(), 3);
    n2.close();
  });
});
