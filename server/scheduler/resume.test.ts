/**
 * Checkpoints and restart (docs/architecture.md §6): `hold` gives a cut with no lease out, the
 * progress taken then resumes a new scheduler where the old one was, and every task leased
 * since the checkpoint is fenced at a new attempt before it runs again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchedulerSession } from '../../client/session.ts';
import { schedKit, track, turns } from './testkit.ts';

type Kit = ReturnType<typeof schedKit>;
const open = async (kit: Kit) => SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
const report = { examples: 100, computeMs: 40, waitMs: 5 };

describe('scheduler checkpoints and resume', () => {
  it('hold resolves only once no lease is out, and holds new LEASEs until released', async () => {
    const kit = schedKit({ shards: 2, iterations: 2, tau: null });
    const a = await open(kit);
    const la = (await a.next())!;
    const held = track(kit.sched.hold());
    await turns();
    assert.equal(held.done, false, 'a lease is out: no cut yet');
    const next = track(a.next());
    await a.done(la, report);
    await turns();
    assert.equal(held.done, true, 'the last lease ended');
    assert.equal(next.done, false, 'no new lease while held');
    assert.deepEqual(kit.sched.progress(), { done: [[la.task, 0, a.worker]], started: [] });
    (held.value as () => void)();
    await turns();
    assert.equal(next.done, true, 'released: the waiting LEASE is answered');
  });

  it('a resumed scheduler starts at the checkpoint and fences the leases granted after it', async () => {
    const kit = schedKit({ shards: 3, iterations: 3 });
    const a = await open(kit);
    for (let i = 0; i < 3; i++) await a.done((await a.next())!, report);
    const release = await kit.sched.hold();
    const progress = kit.sched.progress();
    release();
    assert.equal(progress.done.length, 3);
    // After the checkpoint task 4 was leased (attempt 0) and the whole cluster died.
    const resumed = schedKit({ shards: 3, iterations: 3 }, { resume: { progress, granted: [[4, 0]] } });
    await turns();
    assert.deepEqual(resumed.fences, [[4, 1]], 'the task leased after the checkpoint is fenced at attempt 1');
    const st = resumed.sched.status();
    assert.equal(st.iterationsDone, 1, 'iteration 0 is done');
    assert.equal(st.tasks.done, 3);
    const b = await open(resumed);
    const leased: Array<[number, number]> = [];
    for (let l = await b.next(); l; l = await b.next()) {
      leased.push([l.task, l.attempt]);
      await b.done(l, report);
    }
    assert.deepEqual(
      leased,
      [
        [4, 1],
        [5, 0],
        [6, 0],
        [7, 0],
        [8, 0],
        [9, 0],
      ],
      'every task not in the checkpoint runs once, the re-leased one at its new attempt',
    );
    assert.equal(resumed.sched.status().state, 'done');
    assert.equal(resumed.sched.tasks().filter((t) => t.state === 'done').length, 9);
  });
});
