/**
 * The consistency gate end to end over sessions: BSP, bounded delay and ASP, and τ changed
 * while a LEASE is held.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Lease, SchedulerSession } from '../../client/session.ts';
import { checkGate, schedKit, track, turns } from './testkit.ts';

type Kit = ReturnType<typeof schedKit>;
const open = async (kit: Kit) => SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
const report = { examples: 10, computeMs: 5, waitMs: 0 };

/** Leases and finishes tasks on `s` until a LEASE is held; returns what it ran and the held request. */
async function runUntilHeld(s: SchedulerSession) {
  const ran: Lease[] = [];
  for (;;) {
    const p = track(s.next());
    await turns(100);
    if (!p.done) return { ran, held: p };
    assert.ok(p.value, 'job ended early');
    ran.push(p.value);
    await s.done(p.value, report);
  }
}

const its = (ls: Lease[]) => ls.map((l) => `${l.iteration}.${l.shard}`);

describe('consistency gate', () => {
  it('BSP: no task of iteration i + 1 is leased before iteration i is done; iterations complete in order', async () => {
    const kit = schedKit({ shards: 3, iterations: 3, tau: 0 });
    const completed: number[] = [];
    let finished = false;
    kit.sched.onIterationDone = (i) => completed.push(i);
    kit.sched.onDone = () => {
      finished = true;
    };
    const [a, b] = [await open(kit), await open(kit)];
    assert.notEqual(a.worker, b.worker);
    assert.deepEqual(a.config, { job: 3, shards: 3, iterations: 3, leaseMs: 10_000, heartbeatMs: 2_000, app: 'demo' });
    const first = [(await a.next())!, (await a.next())!, (await b.next())!];
    assert.deepEqual(
      first.map((l) => [l.task, l.attempt, l.iteration, l.shard]),
      [
        [1, 0, 0, 0],
        [2, 0, 0, 1],
        [3, 0, 0, 2],
      ],
    );
    const held = track(b.next());
    await turns(100);
    assert.equal(held.done, false, 'iteration 1 waits for iteration 0');
    await a.done(first[0], report);
    await a.done(first[1], report);
    await turns(100);
    assert.equal(held.done, false, 'still one task of iteration 0 running');
    assert.deepEqual(completed, []);
    await b.done(first[2], report);
    await turns(100);
    assert.deepEqual(completed, [0]);
    assert.deepEqual(its([held.value!]), ['1.0']);
    // Run the rest with both workers.
    let lease: Lease | null = held.value!;
    let who = b;
    while (lease) {
      await who.done(lease, report);
      who = who === a ? b : a;
      lease = await who.next();
    }
    assert.equal(await a.next(), null, 'a finished job answers done');
    assert.deepEqual(completed, [0, 1, 2]);
    assert.equal(finished, true);
    assert.equal(kit.sched.status().state, 'done');
    assert.ok(kit.sched.tasks().every((t) => t.state === 'done' && t.doneAttempt === 0));
    checkGate(kit.events, 3, 0);
    a.close();
    b.close();
  });

  it('bounded delay τ=2: a fast worker runs ahead of a slow one by exactly τ iterations, then waits', async () => {
    const kit = schedKit({ shards: 2, iterations: 6, tau: 2 });
    const [slow, fast] = [await open(kit), await open(kit)];
    const stuck = (await slow.next())!;
    assert.deepEqual(its([stuck]), ['0.0']);
    const { ran, held } = await runUntilHeld(fast);
    assert.deepEqual(its(ran), ['0.1', '1.0', '1.1', '2.0', '2.1']);
    await slow.done(stuck, report);
    await turns(100);
    assert.deepEqual(its([held.value!]), ['3.0'], 'iteration 3 opens once iteration 0 is done');
    checkGate(kit.events, 2, 2);
    slow.close();
    fast.close();
  });

  it('BSP with the same slow worker: the fast one waits after iteration 0', async () => {
    const kit = schedKit({ shards: 2, iterations: 6, tau: 0 });
    const [slow, fast] = [await open(kit), await open(kit)];
    await slow.next();
    const { ran } = await runUntilHeld(fast);
    assert.deepEqual(its(ran), ['0.1']);
    slow.close();
    fast.close();
  });

  it('ASP (τ = null): no gate; a fast worker runs every other task while one is stuck', async () => {
    const kit = schedKit({ shards: 2, iterations: 6, tau: null });
    const [slow, fast] = [await open(kit), await open(kit)];
    const stuck = (await slow.next())!;
    const { ran, held } = await runUntilHeld(fast);
    assert.equal(ran.length, 11);
    assert.deepEqual(kit.sched.status().iterationsDone, 0, 'iteration 0 is not complete');
    await slow.done(stuck, report);
    await turns(100);
    assert.equal(held.done, true);
    assert.equal(held.value, null, 'the held LEASE learns the job is done');
    assert.equal(kit.sched.status().iterationsDone, 6);
    slow.close();
    fast.close();
  });

  it('changing τ while a LEASE is held wakes it, and applies to the next decision', async () => {
    const kit = schedKit({ shards: 2, iterations: 6, tau: 0 });
    const [slow, fast] = [await open(kit), await open(kit)];
    await slow.next();
    const first = await runUntilHeld(fast);
    assert.deepEqual(its(first.ran), ['0.1']);
    kit.sched.setTau(1);
    await turns(100);
    assert.deepEqual(its([first.held.value!]), ['1.0']);
    await fast.done(first.held.value!, report);
    const second = await runUntilHeld(fast);
    assert.deepEqual(its(second.ran), ['1.1']);
    kit.sched.setTau(null);
    await turns(100);
    assert.deepEqual(its([second.held.value!]), ['2.0']);
    await fast.done(second.held.value!, report);
    kit.sched.setTau(0);
    const third = await runUntilHeld(fast);
    assert.deepEqual(its(third.ran), [], 'shrinking τ closes the gate again at once');
    assert.equal(kit.sched.status().tau, 0);
    slow.close();
    fast.close();
  });

  it('a grant carries the slowest clock and τ: its staleness iteration − clock stays within τ', async () => {
    const kit = schedKit({ shards: 2, iterations: 6, tau: 2, stalenessLr: true });
    const [slow, fast] = [await open(kit), await open(kit)];
    const stuck = (await slow.next())!;
    assert.deepEqual([stuck.clock, stuck.tau, stuck.stalenessLr, stuck.eager], [0, 2, true, undefined]);
    const { ran, held } = await runUntilHeld(fast);
    assert.deepEqual(
      ran.map((l) => [l.iteration, l.clock]),
      [
        [0, 0],
        [1, 0],
        [1, 0],
        [2, 0],
        [2, 0],
      ],
    );
    await slow.done(stuck, report);
    await turns(100);
    // The stuck task completes iterations 0, 1 and 2 at once: the held LEASE gets 3 at clock 3.
    assert.deepEqual([held.value!.iteration, held.value!.clock], [3, 3]);
    kit.sched.setOptions({ stalenessLr: false, eager: true });
    await fast.done(held.value!, report);
    const next = (await fast.next())!;
    assert.deepEqual([next.stalenessLr, next.eager], [undefined, true]);
    slow.close();
    fast.close();
  });

  it('eager SSP: a worker is granted the shard it ran last when that shard is next up', async () => {
    const kit = schedKit({ shards: 3, iterations: 4, tau: 1, eager: true });
    const [a, b, c] = [await open(kit), await open(kit), await open(kit)];
    // Iteration 0 hands out shards in order: a → 0, b → 1, c → 2.
    const first = [(await a.next())!, (await b.next())!, (await c.next())!];
    assert.deepEqual(
      first.map((l) => l.shard),
      [0, 1, 2],
    );
    // They finish in reverse order and ask again: each gets its own shard of iteration 1.
    const second: Lease[] = [];
    for (const [s, l] of [
      [c, first[2]],
      [b, first[1]],
      [a, first[0]],
    ] as const) {
      await s.done(l, report);
      second.push((await s.next())!);
    }
    assert.deepEqual(
      second.map((l) => `${l.iteration}.${l.shard}`),
      ['1.2', '1.1', '1.0'],
    );
    // Affinity never runs ahead of the iteration order: with its shard of iteration 2 taken by
    // nobody yet, c finishing first still gets 2.2, and a worker whose shard is taken gets the next.
    await c.done(second[0], report);
    assert.deepEqual(its([(await c.next())!]), ['2.2']);
    a.close();
    b.close();
    c.close();
  });
});
