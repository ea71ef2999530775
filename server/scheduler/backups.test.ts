/**
 * Backup tasks (backups.ts): a task that runs past the bound while a LEASE waits with nothing
 * runnable is leased again to the waiting worker; the first TASK_DONE counts and the other
 * attempt's reports are refused; a lost first lease takes its backup with it (both fenced); a
 * backup that misses its heartbeats ends quietly; with backups off nothing of this happens.
 * Deterministic: a ManualClock and the seeded memory network.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTaskDone,
  parseTask,
  parseWelcome,
  type TaskGrant,
} from '../../shared/protocol/sched.ts';
import type { ReceiptChecker } from './receipts.ts';
import { codeOf, type KitOptions, RawSession, schedKit, track, turns } from './testkit.ts';
import type { JobConfig } from './types.ts';

type Kit = ReturnType<typeof schedKit>;
const report = { examples: 10, computeMs: 4, waitMs: 1 };

async function worker(kit: Kit) {
  const raw = new RawSession(await kit.dial());
  const w = parseWelcome(await raw.call((id) => encodeSchedHello(id, {})));
  const lease = async () => parseTask(await raw.call((id) => encodeLease(id))) as TaskGrant;
  const done = (task: number, attempt: number, receipts?: string[]) =>
    codeOf(raw.call((id) => encodeTaskDone(id, { task, attempt, ...report, ...(receipts ? { receipts } : {}) })));
  const beat = (task: number, attempt: number) => codeOf(raw.call((id) => encodeHeartbeat(id, { task, attempt })));
  return { raw, id: w.worker, lease, done, beat };
}

/**
 * Two workers under BSP, 2 shards: `a` holds task 1, `b` finished task 2 in 100 ms (the median)
 * and waits for a LEASE, which iteration 1 cannot give before task 1 is done.
 */
async function straggling(cfg: Partial<JobConfig> = {}, opts: KitOptions = {}) {
  const kit = schedKit(
    { shards: 2, iterations: 2, tau: 0, backups: true, backupFactor: 2, backupFloorMs: 250, ...cfg },
    opts,
  );
  const a = await worker(kit);
  const b = await worker(kit);
  assert.deepEqual([(await a.lease()).task, (await b.lease()).task], [1, 2]);
  kit.clock.advance(100);
  assert.equal(await b.done(2, 0, opts.receipts ? [receipt(2, 0)] : undefined), 'ok');
  const waiting = track(b.lease());
  await turns();
  assert.equal(waiting.done, false, 'nothing runnable yet');
  return { kit, a, b, waiting };
}

/** Receipts as JSON (a stand-in for sealed ones: server/auth/receipt.ts is tested on its own); a task pushes 5 keys to table 1. */
const receipt = (task: number, attempt: number) =>
  JSON.stringify({ node: 'n1', job: 3, table: 1, task, attempt, seq: 0, keys: 5, duplicate: false });
const checker: ReceiptChecker = { open: (s) => JSON.parse(s), expected: () => new Map([[1, 5]]) };

describe('backup tasks', () => {
  it('leases a task past the bound to the waiting worker; the backup finishing first counts, the first lease is refused after', async () => {
    const { kit, a, b, waiting } = await straggling();
    // The bound is max(250, 2 × 100) ms after task 1's grant: 100 ms have gone, 150 remain.
    await kit.advance(140, 10);
    assert.equal(waiting.done, false, 'not before the bound');
    await kit.advance(20, 10);
    assert.ok(waiting.done, 'granted once the bound passed');
    const backup = waiting.value as TaskGrant;
    assert.deepEqual([backup.task, backup.attempt, backup.iteration], [1, 1, 0]);
    assert.equal(await a.beat(1, 0), 'ok', 'the first lease runs on meanwhile');
    assert.equal(await b.beat(1, 1), 'ok');
    assert.equal(await b.done(1, 1), 'ok');
    assert.deepEqual(
      kit.of('iteration').map((e) => e.iteration),
      [0],
    );
    // The first lease is over: its heartbeat and its TASK_DONE are refused; nothing was fenced.
    assert.equal(await a.beat(1, 0), 'TS_ERR_LEASE_EXPIRED');
    assert.equal(await a.done(1, 0), 'TS_ERR_LEASE_EXPIRED');
    assert.deepEqual(kit.fences, []);
    const rec = kit.sched.tasks()[0];
    assert.deepEqual([rec.state, rec.doneAttempt, rec.doneBy], ['done', 1, b.id]);
    assert.deepEqual(kit.sched.status().backups, { granted: 1, won: 1 });
    // Iteration 1 runs as usual.
    assert.deepEqual([(await a.lease()).task, (await b.lease()).task], [3, 4]);
    a.raw.conn.close();
    b.raw.conn.close();
  });

  it('the first lease finishing first ends the backup: its reports are refused', async () => {
    const { kit, a, b, waiting } = await straggling();
    await kit.advance(200, 10);
    assert.deepEqual([(waiting.value as TaskGrant).task, (waiting.value as TaskGrant).attempt], [1, 1]);
    assert.equal(await a.done(1, 0), 'ok');
    assert.equal(await b.beat(1, 1), 'TS_ERR_NOT_LEASED');
    assert.equal(await b.done(1, 1), 'TS_ERR_NOT_LEASED');
    const rec = kit.sched.tasks()[0];
    assert.deepEqual([rec.state, rec.doneAttempt, rec.doneBy], ['done', 0, a.id]);
    assert.deepEqual(kit.sched.status().backups, { granted: 1, won: 0 });
    assert.deepEqual(kit.fences, []);
    a.raw.conn.close();
    b.raw.conn.close();
  });

  it('a lost first lease takes its backup with it: both attempts are fenced and the task runs again', async () => {
    const { kit, a, b, waiting } = await straggling();
    await kit.advance(200, 10);
    assert.equal((waiting.value as TaskGrant).attempt, 1);
    a.raw.conn.close();
    await turns();
    assert.deepEqual(kit.fences, [[1, 2]], 'one fence, above both attempts');
    assert.equal(await b.beat(1, 1), 'TS_ERR_LEASE_EXPIRED');
    const again = await b.lease();
    assert.deepEqual([again.task, again.attempt], [1, 2]);
    assert.equal(await b.done(1, 2), 'ok');
    b.raw.conn.close();
  });

  it('a backup that misses its heartbeats ends quietly; the first lease runs on and counts', async () => {
    const { kit, a, b, waiting } = await straggling({ leaseMs: 1000, heartbeatMs: 200 });
    await kit.advance(200, 10);
    assert.equal((waiting.value as TaskGrant).attempt, 1);
    for (let i = 0; i < 6; i++) {
      await kit.advance(200, 10);
      assert.equal(await a.beat(1, 0), 'ok');
    }
    assert.deepEqual(
      kit.of('backup-end').map((e) => e.reason),
      ['expired'],
    );
    assert.equal(await b.beat(1, 1), 'TS_ERR_NOT_LEASED');
    assert.equal(await a.done(1, 0), 'ok');
    assert.deepEqual(kit.fences, []);
    a.raw.conn.close();
    b.raw.conn.close();
  });

  it('a backup whose TASK_DONE does not cover its pushes loses the whole task: both attempts fenced', async () => {
    const { kit, a, b, waiting } = await straggling({}, { receipts: checker });
    await kit.advance(200, 10);
    assert.equal((waiting.value as TaskGrant).attempt, 1);
    assert.equal(await b.done(1, 1), 'TS_ERR_TASK_NOT_APPLIED');
    await turns();
    assert.deepEqual(kit.fences, [[1, 2]]);
    assert.equal(await a.done(1, 0, [receipt(1, 0)]), 'TS_ERR_LEASE_EXPIRED', 'the first lease ended too');
    // It runs again as attempt 2 — on the other worker, since `b` lost it by misbehaving.
    const again = track(b.lease());
    const other = await a.lease();
    assert.deepEqual([other.task, other.attempt], [1, 2]);
    assert.equal(await a.done(1, 2, [receipt(1, 2)]), 'ok');
    await turns();
    assert.deepEqual([(again.value as TaskGrant).task], [3]);
    a.raw.conn.close();
    b.raw.conn.close();
  });

  it('with backups off (the default) a waiting LEASE gets no task until the straggler is done', async () => {
    const { kit, a, waiting } = await straggling({ backups: false, holdMs: 60_000 });
    await kit.advance(5_000, 100);
    assert.equal(waiting.done, false);
    assert.equal(kit.sched.status().backups, undefined);
    assert.equal(await a.done(1, 0), 'ok');
    await turns();
    assert.deepEqual([(waiting.value as TaskGrant).task, (waiting.value as TaskGrant).attempt], [3, 0]);
    a.raw.conn.close();
  });
});
