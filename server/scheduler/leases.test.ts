/**
 * Leases: heartbeats, expiry timing, fencing before a task runs again, refusals of dead
 * attempts, release on close, evict, pause/resume/stop, held LEASEs, per-worker records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Lease, SchedulerSession } from '../../client/session.ts';
import { TabshardError } from '../../shared/errors.ts';
import { Flag, MsgType } from '../../shared/protocol/frame.ts';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTaskDone,
  parseTask,
  parseWelcome,
  type TaskGrant,
} from '../../shared/protocol/sched.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { codeOf, FreezableConn, RawSession, schedKit, track, turns } from './testkit.ts';

type Kit = ReturnType<typeof schedKit>;
const open = async (kit: Kit, conn?: Conn, hello = {}) =>
  SchedulerSession.open(conn ?? (await kit.dial()), hello, { clock: kit.clock, timeoutMs: 0 });
const report = { examples: 100, computeMs: 40, waitMs: 5 };
const key = (l: Lease | null) => (l ? [l.task, l.attempt] : null);

/** A fence the test resolves or rejects by hand. */
function manualFence() {
  const calls: Array<{ task: number; attempt: number; resolve: () => void; reject: (e: Error) => void }> = [];
  const fence = (task: number, attempt: number) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ task, attempt, resolve, reject });
    });
  return { calls, fence };
}

async function rawWorker(kit: Kit, hello = {}) {
  const raw = new RawSession(await kit.dial());
  const w = parseWelcome(await raw.call((id) => encodeSchedHello(id, hello)));
  return { raw, worker: w.worker };
}

describe('leases', () => {
  it('an expired lease returns its task exactly leaseMs after the last heartbeat, fenced before it runs again', async () => {
    const f = manualFence();
    const kit = schedKit({ shards: 2, iterations: 1, leaseMs: 10_000, heartbeatMs: 2_000 }, { fence: f.fence });
    const conn = new FreezableConn(await kit.dial());
    const a = await open(kit, conn);
    const revoked: string[] = [];
    a.onrevoked = (l, err) => revoked.push(`${l.task}:${err.code}`);
    const la = (await a.next())!;
    const b = await open(kit);
    const lb = (await b.next())!;
    await b.done(lb, report);
    await kit.advance(7_000);
    const hb = () => kit.sched.status().workers.find((w) => w.worker === a.worker)!.lastHeartbeat!;
    assert.equal(hb(), 1_000_000 + 6_000, 'heartbeats every 2 s kept the lease');
    conn.frozen = true; // the tab hangs: nothing it sends arrives any more
    const held = track(b.next());
    await kit.advance(20_000);
    const ret = kit.of('return');
    assert.equal(ret.length, 1);
    assert.deepEqual([ret[0].reason, ret[0].task, ret[0].attempt, ret[0].worker], ['expired', 1, 1, a.worker]);
    assert.equal(ret[0].t - hb(), 10_000, 'expires exactly leaseMs after the last heartbeat');
    assert.ok(ret[0].t - hb() <= 10_000 + 1_000);
    assert.deepEqual(
      f.calls.map((c) => [c.task, c.attempt]),
      [[1, 1]],
    );
    assert.equal(held.done, false, 'the task is not leased again before the fence is in place');
    f.calls[0].resolve();
    await turns(100);
    assert.deepEqual(key(held.value!), [1, 1]);
    assert.equal(held.value!.shard, 0);
    const order = kit.events.filter((e) => e.task === 1).map((e) => `${e.ev}:${e.attempt}`);
    assert.deepEqual(order, ['lease:0', 'return:1', 'fenced:1', 'lease:1']);
    // The hung tab wakes up: its heartbeat is refused, and so is its late TASK_DONE.
    conn.frozen = false;
    await kit.advance(2_000);
    assert.deepEqual(revoked, ['1:TS_ERR_LEASE_EXPIRED']);
    assert.equal(await codeOf(a.done(la, report)), 'TS_ERR_LEASE_EXPIRED');
    await b.done(held.value!, report);
    const t1 = kit.sched.tasks()[0];
    assert.deepEqual([t1.state, t1.attempt, t1.attempts, t1.doneAttempt, t1.doneBy], ['done', 1, 2, 1, b.worker]);
    assert.equal(kit.sched.status().reassignments, 1);
    assert.equal(kit.sched.status().state, 'done');
    a.close();
    b.close();
  });

  it('heartbeats keep a lease alive far beyond leaseMs', async () => {
    const kit = schedKit({ shards: 1, iterations: 1 });
    const a = await open(kit);
    const l = (await a.next())!;
    await kit.advance(60_000, 250);
    assert.equal(kit.of('return').length, 0);
    await a.done(l, report);
    assert.equal(kit.sched.tasks()[0].doneAttempt, 0);
    a.close();
  });

  it('answers HEARTBEAT and TASK_DONE by the rules: duplicate done acked, other attempts and workers refused', async () => {
    const kit = schedKit({ shards: 2, iterations: 2, tau: null });
    const { raw, worker } = await rawWorker(kit, { agent: 'raw', transport: 'memory' });
    const other = await rawWorker(kit);
    const g = parseTask(await raw.call((id) => encodeLease(id))) as TaskGrant;
    assert.deepEqual([g.task, g.attempt], [1, 0]);
    const done = { task: 1, attempt: 0, ...report };
    const codes = async (r: RawSession, build: (id: number) => Uint8Array[]) => codeOf(r.call(build));
    assert.equal(await codes(raw, (id) => encodeHeartbeat(id, { task: 1, attempt: 0 })), 'ok');
    assert.equal(await codes(other.raw, (id) => encodeHeartbeat(id, { task: 1, attempt: 0 })), 'TS_ERR_NOT_LEASED');
    assert.equal(await codes(raw, (id) => encodeHeartbeat(id, { task: 1, attempt: 1 })), 'TS_ERR_NOT_LEASED');
    assert.equal(await codes(raw, (id) => encodeHeartbeat(id, { task: 2, attempt: 0 })), 'TS_ERR_NOT_LEASED');
    assert.equal(await codes(raw, (id) => encodeHeartbeat(id, { task: 99, attempt: 0 })), 'TS_ERR_NOT_LEASED');
    assert.equal(await codes(other.raw, (id) => encodeTaskDone(id, done)), 'TS_ERR_NOT_LEASED');
    const ack1 = await raw.call((id) => encodeTaskDone(id, done));
    assert.deepEqual([ack1.type, ack1.flags & Flag.DUPLICATE], [MsgType.ACK, 0]);
    const ack2 = await raw.call((id) => encodeTaskDone(id, { ...done, examples: 999 }));
    assert.deepEqual([ack2.type, ack2.flags & Flag.DUPLICATE], [MsgType.ACK, Flag.DUPLICATE], 'idempotent');
    assert.equal(await codes(raw, (id) => encodeHeartbeat(id, { task: 1, attempt: 0 })), 'ok');
    const me = kit.sched.status().workers.find((w) => w.worker === worker)!;
    assert.deepEqual([me.tasksDone, me.examples, me.agent, me.transport], [1, 100, 'raw', 'memory']);
    assert.equal(await codes(raw, (id) => encodeSchedHello(id, {})), 'TS_ERR_INVALID_ARGUMENT');
    const fresh = new RawSession(await kit.dial());
    assert.equal(await codes(fresh, (id) => encodeLease(id)), 'TS_ERR_INVALID_ARGUMENT', 'HELLO first');
    raw.conn.close();
    other.raw.conn.close();
    fresh.conn.close();
  });

  it('releaseOnClose (default): a closed session returns its leases at once, fenced', async () => {
    const kit = schedKit({ shards: 2, iterations: 1 });
    const a = await open(kit);
    await a.next();
    await a.next();
    a.close();
    await turns(50);
    assert.deepEqual(
      kit.of('return').map((e) => [e.reason, e.task, e.attempt]),
      [
        ['closed', 1, 1],
        ['closed', 2, 1],
      ],
    );
    assert.deepEqual(kit.fences, [
      [1, 1],
      [2, 1],
    ]);
    const b = await open(kit);
    assert.deepEqual(key(await b.next()), [1, 1]);
    assert.deepEqual(key(await b.next()), [2, 1]);
    assert.equal(kit.sched.status().workers.find((w) => w.worker === a.worker)!.connected, false);
    b.close();
  });

  it('releaseOnClose false: the lease survives a dropped connection and its worker resumes it', async () => {
    const kit = schedKit({ shards: 1, iterations: 1, releaseOnClose: false });
    const conn = await kit.dial();
    const a = await open(kit, conn);
    const l = (await a.next())!;
    kit.net.drop(conn);
    await turns(50);
    assert.equal(kit.of('return').length, 0);
    const thief = await open(kit, undefined, { worker: a.worker });
    assert.notEqual(thief.worker, a.worker, 'naming an id without its resume secret gives a fresh id');
    await assert.rejects(thief.done(l, report), { code: 'TS_ERR_NOT_LEASED' }, "and no hold on the id's lease");
    thief.close();
    const again = await open(kit, undefined, { worker: a.worker, resume: a.resume });
    assert.equal(again.worker, a.worker, 'a reconnecting worker that shows its resume secret keeps its id');
    await kit.advance(8_000);
    const raw = new RawSession(await kit.dial());
    const taken = parseWelcome(await raw.call((id) => encodeSchedHello(id, { worker: a.worker })));
    assert.notEqual(taken.worker, a.worker, 'an id held by a live session is not given twice');
    await again.done(l, report);
    assert.equal(kit.sched.tasks()[0].doneBy, a.worker);
    again.close();
    raw.conn.close();
  });

  it('evict revokes the worker’s leases (fenced) and closes its session', async () => {
    const kit = schedKit({ shards: 2, iterations: 1, releaseOnClose: false });
    const a = await open(kit);
    const b = await open(kit);
    await a.next();
    await a.next();
    const held = track(b.next());
    kit.sched.evict(a.worker);
    await turns(100);
    assert.deepEqual(
      kit.of('return').map((e) => [e.reason, e.task]),
      [
        ['evicted', 1],
        ['evicted', 2],
      ],
    );
    assert.deepEqual(key(held.value!), [1, 1]);
    assert.equal(await codeOf(a.next()), 'TS_ERR_TRANSPORT_CLOSED');
    assert.equal(kit.sched.status().workers.find((w) => w.worker === a.worker)!.connected, false);
    b.close();
  });

  it('pause holds LEASEs, resume releases them, stop ends the job and leaves no timers', async () => {
    const kit = schedKit({ shards: 2, iterations: 2, tau: null });
    const a = await open(kit);
    const revoked: string[] = [];
    a.onrevoked = (_l, err) => revoked.push(err.code);
    const l1 = (await a.next())!;
    kit.sched.pause();
    const held = track(a.next());
    await turns(100);
    assert.equal(held.done, false);
    assert.equal(kit.sched.status().state, 'paused');
    await a.done(l1, report); // leases out keep running while paused
    kit.sched.resume();
    await turns(100);
    assert.deepEqual(key(held.value!), [2, 0]);
    const held2 = track(a.next());
    await turns(20);
    kit.sched.stop();
    await turns(100);
    assert.equal(held2.value!.task, 3, 'granted before the stop');
    const after = await a.next();
    assert.equal(after, null, 'a stopped job answers done');
    await kit.advance(2_000);
    assert.deepEqual(revoked, ['TS_ERR_JOB_DONE', 'TS_ERR_JOB_DONE']);
    assert.equal(await codeOf(a.done(held.value!, report)), 'TS_ERR_JOB_DONE');
    assert.equal(kit.sched.status().state, 'stopped');
    assert.equal(kit.clock.pending, 0, 'no lease, hold or heartbeat timer left');
    a.close();
  });

  it('a LEASE with nothing runnable is held holdMs, then answered {wait: 0}; held time counts as wait', async () => {
    const kit = schedKit({ shards: 1, iterations: 2, holdMs: 5_000 });
    const a = await open(kit);
    const l = (await a.next())!;
    const { raw, worker } = await rawWorker(kit);
    const reply = track(raw.call((id) => encodeLease(id)));
    await kit.advance(4_900);
    assert.equal(reply.done, false);
    await kit.advance(200);
    assert.deepEqual(parseTask(reply.value!), { wait: 0 });
    const w = kit.sched.status().workers.find((x) => x.worker === worker)!;
    assert.equal(w.waitMs, 5_000);
    await a.done(l, report);
    const w2 = kit.sched.status().workers.find((x) => x.worker === a.worker)!;
    assert.equal(w2.computeMs, 40);
    assert.equal(w2.waitMs, 5, 'reported wait');
    assert.equal(w2.examplesPerSec, 100 / 5.1, 'examples over the time since it joined (under 30 s)');
    a.close();
    raw.conn.close();
  });

  it('a failed fence is logged and retried with backoff; the task runs again only after it succeeds', async () => {
    let failures = 2;
    const calls: number[] = [];
    const kit = schedKit(
      { shards: 1, iterations: 1, fenceRetryMs: 500 },
      {
        fence: async (_task, attempt) => {
          calls.push(attempt);
          if (failures-- > 0) throw new TabshardError('TS_ERR_CONNECT_FAILED', 'node down');
        },
      },
    );
    const a = await open(kit);
    await a.next();
    a.close();
    const b = await open(kit);
    const held = track(b.next());
    await turns(50);
    assert.deepEqual(
      kit.of('fence-failed').map((e) => e.attempt),
      [1],
    );
    await kit.advance(400);
    assert.equal(held.done, false);
    await kit.advance(1_200); // retries at +500 (fails again) and +1500 (succeeds)
    assert.deepEqual(calls, [1, 1, 1]);
    assert.equal(kit.of('fence-failed').length, 2);
    assert.deepEqual(key(held.value!), [1, 1]);
    b.close();
  });
});
