/**
 * Capabilities on the data plane (PROTOCOL.md §6.2): a real ServerNode with an admin token over
 * the seeded in-memory network, its capability key installed with the ring by an admin. Every
 * refused request gets its code and leaves the tables as they were; a node without a token
 * checks nothing. Also the key-set membership walks (against brute force, and their speed), and
 * the manager's key sets reaching a node that joins later.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import { encodeCap, encodeKeySet } from '../../shared/protocol/cap.ts';
import { decodeObject, encodeJson } from '../../shared/protocol/control.ts';
import { MsgType, type TaskStamp } from '../../shared/protocol/frame.ts';
import { encodePull, encodePush, type KvKeys } from '../../shared/protocol/kv.ts';
import { encodeSubscribe, encodeUnsubscribe } from '../../shared/protocol/subscribe.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import type { TableSpec } from '../../shared/table.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { CapabilitySigner, type Claims, type TaskClaims } from '../auth/capability.ts';
import { MAX_TASK_GRANTS } from './access.ts';
import { listHolds, rangesHold, withinRange } from './key-sets.ts';
import { ServerNode } from './node.ts';
import { testCluster } from './testkit.ts';

const TOKEN = 'access-secret';
const JOB = 1;
const T0 = 1_800_000_000_000;

const spec = (id: number, kind: 'dense' | 'sparse', keySpace: number): TableSpec => ({
  job: JOB,
  id,
  name: `t${id}`,
  kind,
  keySpace,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
});
const DENSE = spec(1, 'dense', 1000);
const SPARSE = spec(2, 'sparse', 2 ** 40);
const OTHER = spec(3, 'dense', 1000);
/** Key set 5 of the sparse table: 2000 keys, with a run of 50 consecutive keys from 10_000. */
const SET = Float64Array.from(
  new Set([...Array.from({ length: 50 }, (_, i) => 10_000 + i), ...randomSortedKeys(createRng(8), 1950, 2 ** 40)]),
).sort();

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof TabshardError)) throw e;
    return e.code;
  }
}

const ringBody = (nodes: string[], version: number, capabilityKey?: string) => ({
  ring: { version, vnodes: 16, smallTableValues: 64, nodes },
  addresses: Object.fromEntries(nodes.map((n) => [n, { memory: `memory://${n}` }])),
  ...(capabilityKey === undefined ? {} : { capabilityKey }),
});

/** A node `id` on `net`, with an admin peer that said HELLO, and the three tables defined. */
async function setup(net: MemoryNetwork, id: string, opts: { token?: string; now?: () => number } = {}) {
  const node = new ServerNode(id, { adminToken: opts.token, now: opts.now });
  node.listen(net.listen(id));
  const dial = async () => new RpcPeer(await net.dialer().dial(`memory://${id}`));
  const admin = await dial();
  await admin.call((rid) => encodeJson(MsgType.HELLO, rid, { role: 'admin', token: opts.token }));
  for (const t of [DENSE, SPARSE, OTHER]) await admin.call((rid) => encodeJson(MsgType.TABLE, rid, t));
  return { node, dial, admin };
}

const push = (p: RpcPeer, table: number, task: TaskStamp | null, keys: KvKeys, job = JOB) =>
  p.call((requestId) => {
    const n = keys.kind === 'list' ? keys.keys.length : keys.kind === 'range' ? keys.end - keys.begin : 0;
    return encodePush({ requestId, job, table, clock: 0, task, keys, values: new Float32Array(n).fill(1) });
  });
const pull = (p: RpcPeer, table: number, keys: KvKeys, job = JOB) =>
  p.call((requestId) => encodePull({ requestId, job, table, clock: 0, keys }));
const cap = (p: RpcPeer, token: string, job = JOB) => p.call((rid) => encodeCap(rid, job, token));
const range = (begin: number, end: number): KvKeys => ({ kind: 'range', begin, end });
const list = (...keys: number[]): KvKeys => ({ kind: 'list', keys: Float64Array.from(keys) });

describe('server node: capabilities on the data plane', () => {
  const net = new MemoryNetwork({ seed: 31, maxDelay: 2 });
  const signer = CapabilitySigner.generate();
  let clock = T0;
  let s: Awaited<ReturnType<typeof setup>>;
  /** What an admin pull of every key the tests touch reads. */
  const snapshot = async () => [
    Array.from((await pull(s.admin, DENSE.id, range(0, 1000))).values!),
    Array.from((await pull(s.admin, SPARSE.id, { kind: 'list', keys: SET })).values!),
    Array.from((await pull(s.admin, SPARSE.id, list(1, 2, 3, 10_050))).values!),
    Array.from((await pull(s.admin, OTHER.id, range(0, 1000))).values!),
  ];
  const task = (over: Partial<TaskClaims> = {}): Claims => ({
    kind: 'task',
    job: JOB,
    worker: 7,
    task: 3,
    attempt: 1,
    tables: [
      { id: DENSE.id, range: [0, 100] },
      { id: SPARSE.id, keys: 5 },
    ],
    exp: clock + 60_000,
    ...over,
  });
  const stamp = (seq: number, over: Partial<TaskStamp> = {}): TaskStamp => ({
    worker: 7,
    task: 3,
    attempt: 1,
    seq,
    ...over,
  });

  before(async () => {
    s = await setup(net, 'n1', { token: TOKEN, now: () => clock });
    await s.admin.call((rid) => encodeJson(MsgType.RING, rid, ringBody(['n1'], 1, signer.publicKey())));
    await s.admin.call((rid) => encodeKeySet(rid, JOB, SPARSE.id, 5, SET));
  });
  after(() => s.node.close());

  it('refuses every request of a connection without a capability, and changes nothing', async () => {
    const before = await snapshot();
    const p = await s.dial();
    assert.equal(await codeOf(push(p, DENSE.id, stamp(0), range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(await codeOf(push(p, DENSE.id, null, range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED', 'no task block');
    assert.equal(
      await codeOf(push(p, DENSE.id, stamp(0, { task: 0 }), range(0, 10))),
      'TS_ERR_CAPABILITY_REQUIRED',
      'task 0',
    );
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(
      await codeOf(
        p.call((requestId) =>
          encodeSubscribe({ requestId, job: JOB, table: DENSE.id, subscription: 1, keys: range(0, 4) }),
        ),
      ),
      'TS_ERR_CAPABILITY_REQUIRED',
    );
    assert.equal(
      await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))),
      'TS_ERR_CAPABILITY_REQUIRED',
      'RING query',
    );
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'TS_ERR_CAPABILITY_REQUIRED');
    // Still open: HELLO as a worker, HEARTBEAT, UNSUBSCRIBE.
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.HELLO, rid, { role: 'worker', worker: 7 }))), 'ok');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.HEARTBEAT, rid, {}))), 'ok');
    assert.equal(
      await codeOf(p.call((requestId) => encodeUnsubscribe({ requestId, job: JOB, table: DENSE.id, subscription: 1 }))),
      'ok',
    );
    // A server connection of the group may ask for the ring and STATS (not push).
    const srv = await s.dial();
    await srv.call((rid) => encodeJson(MsgType.HELLO, rid, { role: 'server', node: 'n2', token: TOKEN }));
    assert.equal(await codeOf(srv.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))), 'ok');
    assert.equal(await codeOf(srv.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'ok');
    assert.equal(await codeOf(push(srv, DENSE.id, stamp(0), range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.deepEqual(await snapshot(), before);
    p.close();
    srv.close();
  });

  it('refuses capabilities that do not verify or have expired', async () => {
    const p = await s.dial();
    const good = signer.sign(task());
    const [body, sig] = good.split('.');
    const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    assert.equal(await codeOf(cap(p, `${body}.${flipped}`)), 'TS_ERR_CAPABILITY_INVALID', 'bad signature');
    assert.equal(
      await codeOf(cap(p, CapabilitySigner.generate().sign(task()))),
      'TS_ERR_CAPABILITY_INVALID',
      'another key',
    );
    const forged = Buffer.from(JSON.stringify({ v: 1, ...task({ worker: 8 }) })).toString('base64url');
    assert.equal(await codeOf(cap(p, `${forged}.${sig}`)), 'TS_ERR_CAPABILITY_INVALID', 'claims changed');
    assert.equal(await codeOf(cap(p, signer.sign(task({ exp: clock })))), 'TS_ERR_CAPABILITY_EXPIRED');
    assert.equal(await codeOf(cap(p, '')), 'TS_ERR_CAPABILITY_INVALID');
    assert.equal(
      await codeOf(p.call((rid) => encodeJson(MsgType.CAP, rid, { cap: 5 }, JOB))),
      'TS_ERR_FRAME_MALFORMED',
    );
    // None of them granted anything.
    assert.equal(await codeOf(push(p, DENSE.id, stamp(0), range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    p.close();
  });

  it('a task capability lets its own stamp push its tables and keys, and nothing else', async () => {
    const before = await snapshot();
    const p = await s.dial();
    assert.equal(await codeOf(cap(p, signer.sign(task()))), 'ok');
    const refusals: Array<[string, Promise<unknown>, string]> = [
      ['another task', push(p, DENSE.id, stamp(1, { task: 4 }), range(0, 10)), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['an older attempt', push(p, DENSE.id, stamp(1, { attempt: 0 }), range(0, 10)), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['a newer attempt', push(p, DENSE.id, stamp(1, { attempt: 2 }), range(0, 10)), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['another worker', push(p, DENSE.id, stamp(1, { worker: 8 }), range(0, 10)), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['another job', push(p, DENSE.id, stamp(1), range(0, 10), 2), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['no task block', push(p, DENSE.id, null, range(0, 10)), 'TS_ERR_CAPABILITY_REQUIRED'],
      ['another table', push(p, OTHER.id, stamp(1), range(0, 10)), 'TS_ERR_KEYS_OUTSIDE_TASK'],
      ['past the range', push(p, DENSE.id, stamp(1), range(90, 110)), 'TS_ERR_KEYS_OUTSIDE_TASK'],
      ['a list past the range', push(p, DENSE.id, stamp(1), list(5, 100)), 'TS_ERR_KEYS_OUTSIDE_TASK'],
      ['a key outside the set', push(p, SPARSE.id, stamp(1), list(SET[3], 10_050)), 'TS_ERR_KEYS_OUTSIDE_TASK'],
      ['a range outside the set', push(p, SPARSE.id, stamp(1), range(10_040, 10_051)), 'TS_ERR_KEYS_OUTSIDE_TASK'],
      // The ownership check (which here, the node owning the whole table, also checks the key space) comes first.
      ['the key space', push(p, DENSE.id, stamp(1), list(5, 2000)), 'TS_ERR_KEY_OUT_OF_RANGE'],
    ];
    const codes = await Promise.all(refusals.map(([, r]) => codeOf(r)));
    refusals.forEach(([why, , want], i) => {
      assert.equal(codes[i], want, why);
    });
    assert.deepEqual(await snapshot(), before, 'refused pushes changed nothing');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(2), range(10, 20))), 'ok');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(3), list(0, 99))), 'ok');
    assert.equal(await codeOf(push(p, SPARSE.id, stamp(4), { kind: 'list', keys: SET.subarray(100, 900) })), 'ok');
    assert.equal(await codeOf(push(p, SPARSE.id, stamp(5), range(10_000, 10_050))), 'ok', 'a run of the set');
    assert.equal(
      await codeOf(
        push(p, SPARSE.id, stamp(6), {
          kind: 'list',
          keys: SET.filter((_, i) => i % 7 === 0),
        }),
      ),
      'ok',
    );
    const d = (await pull(p, DENSE.id, range(0, 100))).values!;
    assert.deepEqual([d[0], d[10], d[19], d[20], d[99]], [1, 1, 1, 0, 1], 'the task grant reads its job');
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 1), 2)), 'TS_ERR_CAPABILITY_REQUIRED', 'not another job');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))), 'ok');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, {}, 2))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'ok');
    // STATS `settled` is the operator's: on a tab's connection it is ignored, even malformed.
    const tabStats = (body: unknown) => codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, body)));
    assert.equal(await tabStats({ settled: 'bogus', ms: -1 }), 'ok');
    assert.equal(await tabStats({ settled: 'copies', ms: 10_000 }), 'ok');
    // A grant naming a key set the node does not have covers no key.
    assert.equal(await codeOf(cap(p, signer.sign(task({ task: 9, tables: [{ id: SPARSE.id, keys: 6 }] })))), 'ok');
    assert.equal(await codeOf(push(p, SPARSE.id, stamp(0, { task: 9 }), list(SET[0]))), 'TS_ERR_KEYS_OUTSIDE_TASK');
    // Expired: pushes and reads under it are refused with EXPIRED.
    clock += 60_000;
    const mid = await snapshot();
    assert.equal(await codeOf(push(p, DENSE.id, stamp(7), range(10, 20))), 'TS_ERR_CAPABILITY_EXPIRED');
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 1))), 'TS_ERR_CAPABILITY_EXPIRED');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.deepEqual(await snapshot(), mid);
    // A renewed capability (same attempt, later expiry) takes over.
    assert.equal(await codeOf(cap(p, signer.sign(task()))), 'ok');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(7), range(10, 20))), 'ok');
    p.close();
  });

  it('checks NOT_OWNER before the grant keys, and the grant before the table', async () => {
    const net2 = new MemoryNetwork({ seed: 32, maxDelay: 2 });
    const t = await setup(net2, 'm1', { token: TOKEN, now: () => clock });
    try {
      await t.admin.call((rid) => encodeJson(MsgType.RING, rid, ringBody(['m1', 'm2'], 1, signer.publicKey())));
      const p = await t.dial();
      await cap(p, signer.sign(task({ tables: [{ id: DENSE.id, range: [0, 1] }, { id: 77 }] })));
      // Some key of [0, 1000) is not m1's (two nodes, 16 points each); none is within [0, 1) but key 0.
      assert.equal(await codeOf(push(p, DENSE.id, stamp(0), range(0, 1000))), 'TS_ERR_NOT_OWNER');
      assert.equal(await codeOf(push(p, 77, stamp(1), range(0, 1))), 'TS_ERR_UNKNOWN_TABLE', 'granted, unknown');
      assert.equal(await codeOf(push(p, 78, stamp(1), range(0, 1))), 'TS_ERR_KEYS_OUTSIDE_TASK', 'not granted');
      p.close();
    } finally {
      await t.node.close();
    }
  });

  it('applies a push sent right behind its CAP, without waiting for the ACK', async () => {
    const p = await s.dial();
    const grant = signer.sign(task({ task: 11, worker: 12, attempt: 0 }));
    const st = { worker: 12, task: 11, attempt: 0, seq: 0 };
    const codes = await Promise.all([
      codeOf(cap(p, grant)),
      codeOf(push(p, DENSE.id, st, range(50, 60))),
      codeOf(push(p, DENSE.id, { ...st, seq: 1 }, range(50, 60))),
    ]);
    assert.deepEqual(codes, ['ok', 'ok', 'ok']);
    // The same on a bare connection: both frames handed to the transport in one go.
    const conn = await net.dialer().dial('memory://n1');
    const replies: number[] = [];
    conn.onmessage = (m) => replies.push(m[1]);
    conn.send(encodeCap(1, JOB, signer.sign(task({ task: 12, worker: 12, attempt: 0 }))));
    conn.send(
      encodePush({
        requestId: 2,
        job: JOB,
        table: DENSE.id,
        clock: 0,
        task: { ...st, task: 12 },
        keys: range(50, 60),
        values: new Float32Array(10).fill(1),
      }),
    );
    while (replies.length < 2) await new Promise((r) => setTimeout(r, 1));
    assert.deepEqual(replies, [MsgType.ACK, MsgType.ACK]);
    const v = (await pull(s.admin, DENSE.id, range(50, 60))).values!;
    assert.deepEqual(Array.from(v), new Array(10).fill(3));
    conn.close();
    p.close();
  });

  it('a read capability allows PULL, SUBSCRIBE, RING query and STATS of its job, never a push', async () => {
    const p = await s.dial();
    assert.equal(await codeOf(cap(p, signer.sign({ kind: 'read', job: JOB, worker: 7, exp: clock + 1000 }))), 'ok');
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10))), 'ok');
    assert.equal(
      await codeOf(
        p.call((requestId) =>
          encodeSubscribe({ requestId, job: JOB, table: DENSE.id, subscription: 1, keys: range(0, 4) }),
        ),
      ),
      'ok',
    );
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))), 'ok');
    assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'ok');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(0), range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(await codeOf(push(p, DENSE.id, null, range(0, 10))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10), 2)), 'TS_ERR_CAPABILITY_REQUIRED');
    // An earlier expiry does not shorten the grant; once it passes, reads are EXPIRED.
    assert.equal(await codeOf(cap(p, signer.sign({ kind: 'read', job: JOB, worker: 7, exp: clock + 10 }))), 'ok');
    clock += 500;
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10))), 'ok');
    clock += 500;
    assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10))), 'TS_ERR_CAPABILITY_EXPIRED');
    p.close();
  });

  it('keeps at most 64 task grants per connection: expired ones go first, then the oldest', async () => {
    const p = await s.dial();
    const grant = (t: number, exp = clock + 10_000) => cap(p, signer.sign(task({ task: t, exp })));
    const can = (t: number) => codeOf(push(p, DENSE.id, stamp(100, { task: t }), range(0, 1)));
    for (let t = 101; t < 101 + MAX_TASK_GRANTS; t++) await grant(t, t === 105 ? clock + 10 : undefined);
    clock += 20;
    await grant(200); // 105 expired: it goes
    assert.equal(await can(101), 'ok');
    assert.equal(await can(105), 'TS_ERR_CAPABILITY_REQUIRED');
    await grant(201); // none expired: the oldest (101) goes
    assert.equal(await can(101), 'TS_ERR_CAPABILITY_REQUIRED');
    for (const t of [102, 200, 201]) assert.equal(await can(t), 'ok', `task ${t}`);
    // A newer attempt replaces a task's grant; an older one then changes nothing.
    await cap(p, signer.sign(task({ task: 102, attempt: 2 })));
    await cap(p, signer.sign(task({ task: 102, attempt: 1 })));
    assert.equal(await codeOf(push(p, DENSE.id, stamp(101, { task: 102 }), range(0, 1))), 'TS_ERR_CAPABILITY_REQUIRED');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(101, { task: 102, attempt: 2 }), range(0, 1))), 'ok');
    p.close();
  });

  it('takes KEYSET only from an admin, for a known table; counts sets, CAPs and refusals in STATS', async () => {
    const p = await s.dial();
    assert.equal(
      await codeOf(p.call((rid) => encodeKeySet(rid, JOB, SPARSE.id, 5, Float64Array.of(1)))),
      'TS_ERR_FORBIDDEN',
    );
    assert.equal(
      await codeOf(s.admin.call((rid) => encodeKeySet(rid, JOB, 99, 5, Float64Array.of(1)))),
      'TS_ERR_UNKNOWN_TABLE',
    );
    assert.equal(
      await codeOf(s.admin.call((rid) => encodeKeySet(rid, JOB, DENSE.id, 1, [{ begin: 900, end: 1001 }]))),
      'TS_ERR_KEY_OUT_OF_RANGE',
    );
    const get = async () => decodeObject(await s.admin.call((rid) => encodeJson(MsgType.STATS, rid, {})));
    assert.deepEqual((await get()).keySets, { sets: 1, keys: SET.length });
    await s.admin.call((rid) =>
      encodeKeySet(rid, JOB, DENSE.id, 1, [
        { begin: 0, end: 10 },
        { begin: 10, end: 20 },
      ]),
    );
    await s.admin.call((rid) => encodeKeySet(rid, JOB, DENSE.id, 2, Float64Array.of(1, 2, 3)));
    assert.deepEqual((await get()).keySets, { sets: 3, keys: SET.length + 23 });
    await s.admin.call((rid) => encodeKeySet(rid, JOB, DENSE.id, 2, Float64Array.of(7)));
    assert.deepEqual((await get()).keySets, { sets: 3, keys: SET.length + 21 }, 'replaced');
    // A grant on a ranges set: adjacent ranges were merged, so [5, 15) is within it.
    await cap(p, signer.sign(task({ task: 40, tables: [{ id: DENSE.id, keys: 1 }] })));
    assert.equal(await codeOf(push(p, DENSE.id, stamp(0, { task: 40 }), range(5, 15))), 'ok');
    assert.equal(await codeOf(push(p, DENSE.id, stamp(1, { task: 40 }), range(15, 21))), 'TS_ERR_KEYS_OUTSIDE_TASK');
    const access = (await get()).access as { caps: number; refused: Record<string, number> };
    assert.ok(access.caps >= 10, `caps ${access.caps}`);
    for (const code of [
      'TS_ERR_CAPABILITY_REQUIRED',
      'TS_ERR_CAPABILITY_INVALID',
      'TS_ERR_CAPABILITY_EXPIRED',
      'TS_ERR_KEYS_OUTSIDE_TASK',
    ])
      assert.ok(access.refused[code] > 0, code);
    p.close();
  });

  it('refuses a RING install with a bad capabilityKey and keeps the ring and key it had', async () => {
    for (const capabilityKey of ['', 'not base64!', 'AAAA', 'A'.repeat(2000), 5])
      assert.equal(
        await codeOf(s.admin.call((rid) => encodeJson(MsgType.RING, rid, { ...ringBody(['n1'], 9), capabilityKey }))),
        'TS_ERR_INVALID_ARGUMENT',
        String(capabilityKey).slice(0, 20),
      );
    assert.equal(s.node.stats().ring, 1);
    // A later install without a key keeps it; one with another key replaces it.
    await s.admin.call((rid) => encodeJson(MsgType.RING, rid, ringBody(['n1'], 2)));
    const p = await s.dial();
    assert.equal(await codeOf(cap(p, signer.sign(task()))), 'ok');
    const other = CapabilitySigner.generate();
    await s.admin.call((rid) => encodeJson(MsgType.RING, rid, ringBody(['n1'], 3, other.publicKey())));
    assert.equal(await codeOf(cap(p, signer.sign(task()))), 'TS_ERR_CAPABILITY_INVALID');
    assert.equal(await codeOf(cap(p, other.sign(task()))), 'ok');
    // The RING query reply does not carry the key.
    assert.equal(decodeObject(await p.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))).capabilityKey, undefined);
    p.close();
  });
});

describe('server node: capabilities, other nodes', () => {
  it('an enforcing node without a capability key refuses CAP, pushes and reads', async () => {
    const net = new MemoryNetwork({ seed: 33, maxDelay: 2 });
    const { node, dial } = await setup(net, 'k1', { token: TOKEN });
    try {
      const p = await dial();
      const token = CapabilitySigner.generate().sign({
        kind: 'read',
        job: JOB,
        worker: 1,
        exp: Date.now() + 60_000,
      });
      assert.equal(await codeOf(cap(p, token)), 'TS_ERR_CAPABILITY_INVALID');
      assert.equal(
        await codeOf(push(p, DENSE.id, { worker: 1, task: 1, attempt: 0, seq: 0 }, range(0, 1))),
        'TS_ERR_CAPABILITY_REQUIRED',
      );
      assert.equal(await codeOf(pull(p, DENSE.id, range(0, 1))), 'TS_ERR_CAPABILITY_REQUIRED');
      p.close();
    } finally {
      await node.close();
    }
  });

  it('a node without a token accepts everything, as before (CAP is ACKed unchecked)', async () => {
    const net = new MemoryNetwork({ seed: 34, maxDelay: 2 });
    const { node, dial } = await setup(net, 'open');
    try {
      const p = await dial();
      assert.equal(await codeOf(cap(p, 'anything')), 'ok');
      assert.equal(await codeOf(push(p, DENSE.id, null, range(0, 10))), 'ok');
      assert.equal(await codeOf(push(p, OTHER.id, { worker: 1, task: 9, attempt: 0, seq: 0 }, range(0, 10))), 'ok');
      assert.equal(await codeOf(pull(p, DENSE.id, range(0, 10))), 'ok');
      assert.equal(await codeOf(p.call((rid) => encodeKeySet(rid, JOB, DENSE.id, 1, Float64Array.of(1)))), 'ok');
      assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.STATS, rid, {}))), 'ok');
      assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, ringBody(['open'], 1)))), 'ok');
      assert.equal(await codeOf(p.call((rid) => encodeJson(MsgType.RING, rid, {}, JOB))), 'ok');
      assert.deepEqual(node.stats().access, { caps: 0, refused: {} });
      p.close();
    } finally {
      await node.close();
    }
  });
});

describe('key-set membership', () => {
  /** The brute-force answer: every key of `keys` is in `has`. */
  const every = (keys: KvKeys, has: (k: number) => boolean): boolean => {
    if (keys.kind === 'list') return keys.keys.every(has);
    const b = keys.kind === 'range' ? [keys.begin, keys.end] : Array.from(keys.bounds);
    for (let i = 0; i < b.length; i += 2) for (let k = b[i]; k < b[i + 1]; k++) if (!has(k)) return false;
    return true;
  };

  it('matches brute force for lists, ranges and RANGES against list sets, range sets and a grant range', () => {
    const rng = createRng(41);
    for (let round = 0; round < 400; round++) {
      const space = 50 + rng.int(400);
      // A set: random keys with some runs.
      const inSet = new Set<number>();
      for (let i = rng.int(space); i > 0; i--) {
        const at = rng.int(space);
        const run = rng.next() < 0.3 ? 1 + rng.int(20) : 1;
        for (let k = at; k < Math.min(space, at + run); k++) inSet.add(k);
      }
      const set = Float64Array.from(inSet).sort();
      const bounds: number[] = [];
      for (const k of set)
        if (bounds.length > 0 && bounds[bounds.length - 1] === k) bounds[bounds.length - 1] = k + 1;
        else bounds.push(k, k + 1);
      const setBounds = Float64Array.from(bounds);
      // Queries: mostly drawn from the set (so that many hold), some not.
      for (let q = 0; q < 10; q++) {
        let keys: KvKeys;
        const pick = rng.int(3);
        const from = rng.next() < 0.7 && set.length > 0 ? set : Float64Array.from({ length: space }, (_, i) => i);
        if (pick === 0) {
          const sub = from.filter(() => rng.next() < 0.2 + 0.8 * (q / 10));
          keys = { kind: 'list', keys: rng.next() < 0.2 ? Float64Array.from([...sub, space + 3]) : sub };
        } else {
          const rs: number[] = [];
          let at = rng.int(space);
          for (let i = pick === 1 ? 1 : 1 + rng.int(4); i > 0 && at < space + 5; i--) {
            const len = rng.int(12);
            if (len === 0 && pick === 2) continue;
            rs.push(at, at + len);
            at += len + rng.int(30);
          }
          keys =
            pick === 1 || rs.length === 0
              ? { kind: 'range', begin: rs[0] ?? 3, end: rs[1] ?? 3 }
              : { kind: 'ranges', bounds: Float64Array.from(rs) };
        }
        const want = every(keys, (k) => inSet.has(k));
        assert.equal(listHolds(set, keys), want, `list set, round ${round}`);
        assert.equal(rangesHold(setBounds, keys), want, `ranges set, round ${round}`);
        const [gb, ge] = [rng.int(space), rng.int(space)].sort((a, b) => a - b);
        assert.equal(
          withinRange(gb, ge, keys),
          every(keys, (k) => k >= gb && k < ge),
          `range grant, round ${round}`,
        );
      }
    }
  });

  it('checks a 13k-key sub-list of a 13k-key set in tens of microseconds', () => {
    const set = randomSortedKeys(createRng(42), 13_000, 2 ** 40);
    const sub: KvKeys = { kind: 'list', keys: set.filter((_, i) => i % 50 !== 0) };
    const all: KvKeys = { kind: 'list', keys: set };
    for (let i = 0; i < 200; i++) assert.ok(listHolds(set, sub) && listHolds(set, all));
    const reps = 200;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) listHolds(set, i % 2 ? sub : all);
    const us = ((performance.now() - t0) * 1000) / reps;
    console.log(`# listHolds: ${us.toFixed(1)} µs per 13k-key check`);
    assert.ok(us < 1000, `${us} µs`);
  });
});

describe('manager key sets', () => {
  it('defineKeySet reaches every node, replaces a set, and reaches a node that joins later', async () => {
    const net = new MemoryNetwork({ seed: 35, maxDelay: 2 });
    const c = await testCluster([DENSE, SPARSE], { net, ids: ['j1', 'j2'], adminToken: TOKEN });
    const j3 = new ServerNode('j3', { adminToken: TOKEN, dialer: net.dialer() });
    j3.listen(net.listen('j3'));
    try {
      await c.mgr.defineKeySet(JOB, SPARSE.id, 5, SET);
      await c.mgr.defineKeySet(JOB, DENSE.id, 1, Float64Array.of(1, 2, 3));
      await c.mgr.defineKeySet(JOB, DENSE.id, 1, Float64Array.of(4, 5));
      for (const n of c.nodes) assert.deepEqual(n.stats().keySets, { sets: 2, keys: SET.length + 2 }, n.id);
      assert.equal(await codeOf(c.mgr.defineKeySet(JOB, 99, 1, Float64Array.of(1))), 'TS_ERR_UNKNOWN_TABLE');
      assert.equal(await codeOf(c.mgr.defineKeySet(JOB, DENSE.id, 1, Float64Array.of(2, 1))), 'TS_ERR_KEYS_UNSORTED');
      await c.mgr.join({ id: 'j3', addresses: { memory: 'memory://j3' }, control: 'memory://j3' });
      assert.deepEqual(j3.stats().keySets, { sets: 2, keys: SET.length + 2 });
    } finally {
      await c.close();
      await j3.close();
    }
  });
});
