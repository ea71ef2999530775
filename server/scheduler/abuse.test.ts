/**
 * What the scheduler gives an untrusted worker (PROTOCOL.md §6.1, §6.2): capabilities bound to
 * the session's own worker id and the lease's (task, attempt); a cap on the leases one worker
 * may hold; leases held past their task's expected time returned even while heartbeating; and a
 * bounded book of worker records however many sessions come and go; a TASK_DONE counted only
 * with receipts covering its pushes (§6.3), the task otherwise given to another worker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Frame } from '../../shared/protocol/frame.ts';
import { receiptToString } from '../../shared/protocol/receipt.ts';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTaskDone,
  parseTask,
  parseWelcome,
} from '../../shared/protocol/sched.ts';
import { CapabilitySigner, CapabilityVerifier } from '../auth/capability.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { codeOf, RawSession, schedKit, track } from './testkit.ts';
import { MAX_WORKER_RECORDS } from './workers.ts';

const report = { examples: 10, computeMs: 4, waitMs: 1 };

async function hello(raw: RawSession) {
  return parseWelcome(await raw.call((id) => encodeSchedHello(id, {})));
}

describe('scheduler against untrusted workers', () => {
  it('signs a read capability per session and a task capability per lease, bound to the assigned id', async () => {
    const signer = CapabilitySigner.generate();
    const verifier = new CapabilityVerifier(signer.publicKey());
    const kit = schedKit(
      { shards: 2, iterations: 1, maxLeaseMs: 60_000 },
      {
        capabilities: {
          sign: (c) => signer.sign(c),
          tables: (t) => [
            { id: 1, keys: t.shard },
            { id: 2, range: [t.task - 1, t.task] },
          ],
        },
      },
    );
    const raw = new RawSession(await kit.dial());
    const w = await hello(raw);
    const read = verifier.verify(w.read, Date.now());
    assert.deepEqual({ ...read, exp: 0 }, { kind: 'read', job: 3, worker: w.worker, exp: 0 });
    const t = parseTask(await raw.call((id) => encodeLease(id)));
    assert.ok('task' in t && t.cap);
    const claims = verifier.verify(t.cap, Date.now());
    assert.deepEqual(
      { ...claims, exp: 0 },
      {
        kind: 'task',
        job: 3,
        worker: w.worker,
        task: t.task,
        attempt: t.attempt,
        tables: [
          { id: 1, keys: t.shard },
          { id: 2, range: [t.task - 1, t.task] },
        ],
        exp: 0,
      },
    );
    const life = claims.exp - Date.now();
    assert.ok(life > 55_000 && life <= 60_000, `a task capability lives maxLeaseMs (${life} ms)`);
    raw.conn.close();
  });

  it('refuses a LEASE past maxLeases (held and waiting together) with TS_ERR_LEASE_LIMIT', async () => {
    const kit = schedKit({ shards: 4, iterations: 1, tau: 0, maxLeases: 2 });
    const raw = new RawSession(await kit.dial());
    await hello(raw);
    parseTask(await raw.call((id) => encodeLease(id)));
    parseTask(await raw.call((id) => encodeLease(id)));
    assert.equal(await codeOf(raw.call((id) => encodeLease(id))), 'TS_ERR_LEASE_LIMIT');
    // Another worker still gets the remaining tasks.
    const other = new RawSession(await kit.dial());
    await hello(other);
    assert.ok('task' in parseTask(await other.call((id) => encodeLease(id))));
    raw.conn.close();
    other.conn.close();
  });

  it('returns a lease held past its task time even while it heartbeats (fenced, then leased again)', async () => {
    const kit = schedKit({
      shards: 3,
      iterations: 1,
      leaseMs: 10_000,
      heartbeatMs: 2_000,
      overdueFactor: 20,
      overdueFloorMs: 5_000,
      maxLeaseMs: 60_000,
    });
    const hoarder = new RawSession(await kit.dial());
    await hello(hoarder);
    const honest = new RawSession(await kit.dial());
    const hw = await hello(honest);
    const held = parseTask(await hoarder.call((id) => encodeLease(id)));
    assert.ok('task' in held);
    // The honest worker finishes a task in 100 ms: the median task time is 100 ms, the bound 5 s (the floor).
    const t1 = parseTask(await honest.call((id) => encodeLease(id)));
    assert.ok('task' in t1);
    await kit.advance(100);
    await honest.call((id) => encodeTaskDone(id, { task: t1.task, attempt: t1.attempt, ...report }));
    let beats = 0;
    let refused = 'ok';
    while (refused === 'ok' && beats < 10) {
      await kit.advance(1_000);
      beats++;
      refused = await codeOf(hoarder.call((id) => encodeHeartbeat(id, { task: held.task, attempt: held.attempt })));
    }
    assert.equal(refused, 'TS_ERR_LEASE_EXPIRED');
    assert.equal(beats, 5, 'refused at the first heartbeat past 5 s (5.1 s after the grant)');
    assert.deepEqual(
      kit.of('return').map((e) => [e.reason, e.task, e.attempt]),
      [['overdue', held.task, held.attempt + 1]],
    );
    assert.deepEqual(kit.fences, [[held.task, held.attempt + 1]]);
    const again = parseTask(await honest.call((id) => encodeLease(id)));
    assert.ok('task' in again);
    assert.ok(hw.worker > 0);
    // Benched (benchMs, default 60 s) while the honest worker has a session: a task is left, yet
    // the hoarder's LEASE is held and answered `wait`; once the bench is over it gets the task.
    const asked = track(hoarder.call((id) => encodeLease(id)));
    await kit.advance(10_500);
    assert.ok(asked.done);
    assert.deepEqual(parseTask(asked.value as Frame), { wait: 0 });
    await kit.advance(50_000);
    const later = parseTask(await hoarder.call((id) => encodeLease(id)));
    assert.ok('task' in later, JSON.stringify(later));
    hoarder.conn.close();
    honest.conn.close();
  });

  it('refuses a TASK_DONE whose receipts do not cover the pushes: the task goes back, to another worker', async () => {
    const key = new ReceiptKey('token');
    const receipt = (task: number, attempt: number) =>
      receiptToString(key.seal({ node: 'n1', job: 3, table: 0, task, attempt, seq: 0, keys: 5, duplicate: false }));
    const kit = schedKit(
      { shards: 2, iterations: 1 },
      { receipts: { open: (s) => key.open(s), expected: () => new Map([[0, 5]]) } },
    );
    const liar = new RawSession(await kit.dial());
    const lw = await hello(liar);
    const honest = new RawSession(await kit.dial());
    await hello(honest);
    const a = parseTask(await liar.call((id) => encodeLease(id)));
    assert.ok('task' in a);
    for (const receipts of [undefined, [receipt(a.task, a.attempt + 1)]]) {
      // No pushes at all, then a receipt of another attempt: the first refusal ends the lease.
      const code = await codeOf(
        liar.call((id) => encodeTaskDone(id, { task: a.task, attempt: a.attempt, ...report, receipts })),
      );
      assert.equal(code, receipts ? 'TS_ERR_LEASE_EXPIRED' : 'TS_ERR_TASK_NOT_APPLIED');
    }
    assert.deepEqual(
      kit.of('return').map((e) => [e.reason, e.task, e.attempt]),
      [['unapplied', a.task, a.attempt + 1]],
    );
    // The liar asks first, but the returned task waits for the other worker; the liar gets the fresh one.
    const next = parseTask(await liar.call((id) => encodeLease(id)));
    assert.ok('task' in next && next.task !== a.task);
    const again = parseTask(await honest.call((id) => encodeLease(id)));
    assert.ok('task' in again);
    assert.deepEqual([again.task, again.attempt], [a.task, a.attempt + 1]);
    await honest.call((id) =>
      encodeTaskDone(id, {
        task: again.task,
        attempt: again.attempt,
        ...report,
        receipts: [receipt(again.task, again.attempt)],
      }),
    );
    const w = kit.sched.status().workers.find((x) => x.worker === lw.worker)!;
    assert.deepEqual([w.tasksDone, w.tasksRefused], [0, 1]);
    // With no other worker left, the task goes back to the one that lost it.
    await codeOf(liar.call((id) => encodeTaskDone(id, { task: next.task, attempt: next.attempt, ...report })));
    honest.conn.close();
    await kit.advance(100);
    const last = parseTask(await liar.call((id) => encodeLease(id)));
    assert.ok('task' in last);
    assert.deepEqual([last.task, last.attempt], [next.task, next.attempt + 1]);
    liar.conn.close();
  });

  it('keeps at most MAX_WORKER_RECORDS worker records however many sessions come and go', async () => {
    const kit = schedKit({ shards: 1, iterations: 1 });
    for (let i = 0; i < MAX_WORKER_RECORDS + 50; i++) {
      const raw = new RawSession(await kit.dial());
      await hello(raw);
      raw.conn.close();
    }
    const raw = new RawSession(await kit.dial());
    const last = await hello(raw);
    const workers = kit.sched.status().workers;
    assert.equal(workers.length, MAX_WORKER_RECORDS);
    assert.ok(
      workers.some((w) => w.worker === last.worker && w.connected),
      'the live session is kept',
    );
    raw.conn.close();
  });
});
