/**
 * A real server-node process (`tabshard server`) over TCP, enforcing capabilities (it has an
 * admin token; the manager installs the capability key): at-most-once pushes, admin-only
 * control messages, and 100,000 random and mutated frames that must each be answered with a
 * valid reply or a coded ERROR while the process stays up and its tables stay unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tcpDialer as clientTcp } from '../../client/transports/tcp.ts';
import { Worker } from '../../client/worker.ts';
import type { TabshardError } from '../../shared/errors.ts';
import { encodeCap, encodeKeySet } from '../../shared/protocol/cap.ts';
import { encodeJson } from '../../shared/protocol/control.ts';
import { decodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import { ackIsDuplicate, encodePull, encodePush } from '../../shared/protocol/kv.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import type { TableSpec } from '../../shared/table.ts';
import { concatParts } from '../../shared/transport/types.ts';
import { CapabilitySigner, type TableGrant } from '../auth/capability.ts';
import { type NodeChild, spawnNode } from '../cluster.ts';
import { ServerManager } from '../manager.ts';
import { tcpDialer } from '../transports/tcp.ts';

const TOKEN = 'live-test-token';
const DENSE: TableSpec = {
  job: 1,
  id: 0x5a5a5a5a,
  name: 'guarded',
  kind: 'dense',
  keySpace: 4096,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
};
const SPARSE: TableSpec = {
  ...DENSE,
  id: 0x5a5a5a5b,
  name: 'guarded-sparse',
  kind: 'sparse',
  keySpace: 2 ** 40,
  valueLength: 2,
};
const sparseKeys = randomSortedKeys(createRng(3), 500, 2 ** 40);
const signer = CapabilitySigner.generate();
/** A task capability (PROTOCOL.md §6.2) of an hour, any key of the tables. */
const grant = (job: number, worker: number, task: number, attempt: number, tables: TableGrant[]) =>
  signer.sign({ kind: 'task', job, worker, task, attempt, tables, exp: Date.now() + 3_600_000 });

describe('a live server node process', () => {
  let node: NodeChild;
  let mgr: ServerManager;
  let w: Worker;
  before(async () => {
    node = await spawnNode('live', ['--no-webrtc'], TOKEN);
    mgr = new ServerManager(tcpDialer(), [{ id: 'live', addresses: node.addresses, control: node.addresses.tcp }], {
      adminToken: TOKEN,
      capabilityKey: signer.publicKey(),
    });
    await mgr.start();
    await mgr.defineTable(DENSE);
    await mgr.defineTable(SPARSE);
    // The ring query needs a capability: the worker gets the layout from the manager instead.
    w = await Worker.connect({ seed: async () => mgr.info, dialers: { tcp: clientTcp() }, job: 1, workerId: 42 });
    w.setTask(1, 0);
    await new Promise<void>((resolve, reject) =>
      w.sendSlice(
        'live',
        (id) => encodeCap(id, 1, grant(1, 42, 1, 0, [{ id: DENSE.id }, { id: SPARSE.id }])),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    await w.wait(
      w.table('guarded').push(
        { begin: 0, end: 4096 },
        Float32Array.from({ length: 4096 }, (_, i) => i),
      ),
    );
    await w.wait(w.table('guarded-sparse').push(sparseKeys, new Float32Array(1000).fill(2)));
  });
  after(async () => {
    w?.close();
    mgr?.close();
    if (node && node.child.exitCode === null) {
      const exited = new Promise((resolve) => node.child.once('exit', resolve));
      node.child.kill('SIGTERM');
      await exited;
    }
  });

  const snapshot = async () => [
    Array.from((await w.wait(w.table('guarded').pull({ begin: 0, end: 4096 })))!),
    Array.from((await w.wait(w.table('guarded-sparse').pull(sparseKeys)))!),
  ];

  it('applies the same (task, attempt, seq) push once, and says so in the ack', async () => {
    const peer = new RpcPeer(await clientTcp().dial(node.addresses.tcp));
    await peer.call((id) => encodeCap(id, 1, grant(1, 9, 77, 1, [{ id: DENSE.id }])));
    const push = (id: number) =>
      encodePush({
        requestId: id,
        job: 1,
        table: DENSE.id,
        clock: 0,
        task: { worker: 9, task: 77, attempt: 1, seq: 0 },
        keys: { kind: 'range', begin: 10, end: 12 },
        values: Float32Array.of(100, 100),
      });
    assert.equal(ackIsDuplicate(await peer.call(push)), false);
    assert.equal(ackIsDuplicate(await peer.call(push)), true);
    const reply = await peer.call((id) =>
      encodePull({ requestId: id, job: 1, table: DENSE.id, clock: 0, keys: { kind: 'range', begin: 10, end: 12 } }),
    );
    assert.deepEqual(Array.from(reply.values!), [110, 111]);
    // Back out the change through the worker so the snapshot test below starts from the seed state.
    await w.wait(w.table('guarded').push({ begin: 10, end: 12 }, Float32Array.of(-100, -100)));
    peer.close();
  });

  it('refuses TABLE, RING install and FENCE from a connection without the admin token', async () => {
    const peer = new RpcPeer(await clientTcp().dial(node.addresses.tcp));
    const refused = async (build: (id: number) => Uint8Array[]) => {
      try {
        await peer.call(build);
        return 'accepted';
      } catch (e) {
        return (e as TabshardError).code;
      }
    };
    assert.equal(await refused((id) => encodeJson(MsgType.TABLE, id, { ...DENSE, id: 3 })), 'TS_ERR_FORBIDDEN');
    assert.equal(await refused((id) => encodeJson(MsgType.RING, id, mgr.info)), 'TS_ERR_FORBIDDEN');
    assert.equal(
      await refused((id) => encodeJson(MsgType.FENCE, id, { table: DENSE.id, task: 1, attempt: 9 }, 1)),
      'TS_ERR_FORBIDDEN',
    );
    assert.equal(
      await refused((id) => encodeJson(MsgType.HELLO, id, { role: 'admin', token: 'guess' })),
      'TS_ERR_FORBIDDEN',
    );
    peer.close();
  });

  it('answers 100,000 random and mutated frames with replies or coded errors; stays up; tables unchanged', async () => {
    const before = await snapshot();
    const rng = createRng(99);
    // Seeds address job 7 / table 0x11111111: no 4-byte mutation can turn them into the guarded tables.
    const seeds = [
      encodePush({
        requestId: 1,
        job: 7,
        table: 0x11111111,
        clock: 0,
        task: { worker: 1, task: 2, attempt: 0, seq: 0 },
        keys: { kind: 'range', begin: 0, end: 8 },
        values: new Float32Array(8),
      }),
      encodePush({
        requestId: 1,
        job: 7,
        table: 0x11111111,
        clock: 0,
        task: null,
        keys: { kind: 'list', keys: Float64Array.of(1, 9, 2 ** 33) },
        values: new Float32Array(3),
      }),
      encodePull({
        requestId: 1,
        job: 7,
        table: 0x11111111,
        clock: 0,
        keys: { kind: 'list', keys: Float64Array.of(5, 6) },
      }),
      encodeJson(MsgType.TABLE, 1, { ...DENSE, job: 7, id: 0x11111111 }),
      encodeJson(MsgType.RING, 1, mgr.info),
      encodeJson(MsgType.RING, 1, {}, 7),
      encodeJson(MsgType.FENCE, 1, { table: 0x11111111, task: 3, attempt: 1 }, 7),
      encodeJson(MsgType.HELLO, 1, { role: 'worker', worker: 5 }),
      encodeJson(MsgType.STATS, 1, {}),
      encodeCap(1, 7, grant(7, 1, 2, 0, [{ id: 0x11111111 }])),
      encodeKeySet(1, 7, 0x11111111, 3, Float64Array.of(1, 9, 2 ** 33)),
    ].map(concatParts);
    // Most seeds get past the capability checks: this connection holds a grant of job 7's seed stamp.
    const capPeer = new RpcPeer(await clientTcp().dial(node.addresses.tcp));
    await capPeer.call((id) => encodeCap(id, 7, grant(7, 1, 2, 0, [{ id: 0x11111111 }])));
    const conn = capPeer.conn;
    let replies = 0;
    let errors = 0;
    let waiter: (() => void) | null = null;
    let target = 0;
    conn.onmessage = (m) => {
      const f = decodeFrame(m); // every reply must itself be a valid frame
      if (f.type === MsgType.ERROR) errors++;
      else
        assert.ok(
          [MsgType.ACK, MsgType.PULL_REPLY, MsgType.HELLO, MsgType.RING, MsgType.STATS].includes(f.type as 0x13),
        );
      if (++replies >= target) waiter?.();
    };
    const total = 100_000;
    for (let sent = 0; sent < total; ) {
      for (let k = 0; k < 1000; k++, sent++) {
        let m: Uint8Array;
        const pick = rng.next();
        if (pick < 0.2) m = Uint8Array.from({ length: rng.int(80) }, () => rng.int(256));
        else {
          m = seeds[rng.int(seeds.length)].slice();
          for (let j = 1 + rng.int(4); j > 0; j--) m[rng.int(m.length)] = rng.int(256);
          if (pick < 0.3) m = m.subarray(0, rng.int(m.length + 1));
          if (pick > 0.97) new DataView(m.buffer, m.byteOffset).setUint32(24, 0xffffffff, true); // a huge key count
        }
        conn.send([m]);
      }
      target = sent;
      if (replies < target) await new Promise<void>((resolve) => (waiter = resolve));
    }
    assert.equal(replies, total);
    assert.ok(errors > total / 2, `most garbage is refused (${errors} errors)`);
    assert.equal(node.child.exitCode, null, 'the server process is still running');
    assert.deepEqual(await snapshot(), before);
    conn.close();
  });
});
