/**
 * Exactly-once accounting under a seeded random schedule of faults: many workers, random
 * compute times, tabs that hang (their sends vanish) and wake up later, tabs that crash and
 * reconnect, connections dropped by the network, slow and failing fences. Every task must end
 * done exactly once, every attempt beyond the first must follow a fence for it, and the gate
 * must hold throughout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchedulerSession } from '../../client/session.ts';
import { sleep } from '../../shared/clock-source.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng, type Rng } from '../../shared/rng.ts';
import { checkGate, FreezableConn, schedKit, track, turns } from './testkit.ts';

type Kit = ReturnType<typeof schedKit>;

interface Tally {
  hangs: number;
  crashes: number;
  lateRefused: number;
  reconnects: number;
}

const SHARDS = 10;
const ITERATIONS = 12;
const TASKS = SHARDS * ITERATIONS;
const EXPECTED = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_LEASE_EXPIRED', 'TS_ERR_NOT_LEASED']);

/** One volunteer tab: leases, computes, reports, and misbehaves now and then. */
async function agent(kit: Kit, rng: Rng, name: string, live: Set<FreezableConn>, tally: Tally): Promise<void> {
  let worker: number | undefined;
  for (;;) {
    const conn = new FreezableConn(await kit.dial());
    live.add(conn);
    let s: SchedulerSession;
    try {
      s = await SchedulerSession.open(conn, { worker, agent: name }, { clock: kit.clock, timeoutMs: 0 });
    } catch (err) {
      assert.ok(err instanceof TabshardError && EXPECTED.has(err.code), String(err));
      tally.reconnects++;
      continue;
    }
    worker = s.worker;
    const revoked = new Set<number>();
    s.onrevoked = (l) => revoked.add(l.task);
    try {
      for (;;) {
        const l = await s.next();
        if (!l) {
          s.close();
          live.delete(conn);
          return;
        }
        const fate = rng.next();
        if (fate < 0.06) {
          // Hang: nothing gets through for a while (the lease may expire), then try to finish.
          tally.hangs++;
          conn.frozen = true;
          await sleep(kit.clock, rng.int(12_000));
          conn.frozen = false;
        } else if (fate < 0.1) {
          // Crash mid-task: the tab closes; a fresh one comes back.
          tally.crashes++;
          await sleep(kit.clock, rng.int(2_000));
          s.close();
          break;
        } else await sleep(kit.clock, 100 + rng.int(2_500));
        try {
          await s.done(l, { examples: 10, computeMs: 100, waitMs: 0 });
        } catch (err) {
          if (!(err instanceof TabshardError) || err.code === 'TS_ERR_TRANSPORT_CLOSED') throw err;
          assert.ok(EXPECTED.has(err.code), err.code);
          tally.lateRefused++;
        }
      }
    } catch (err) {
      assert.ok(err instanceof TabshardError && err.code === 'TS_ERR_TRANSPORT_CLOSED', String(err));
    }
    live.delete(conn);
    tally.reconnects++;
  }
}

async function run(seed: number) {
  const rng = createRng(seed);
  const fenced = new Set<string>();
  let fenceFailures = 0;
  const kit = schedKit(
    {
      shards: SHARDS,
      iterations: ITERATIONS,
      tau: 1,
      leaseMs: 5_000,
      heartbeatMs: 1_000,
      holdMs: 2_000,
      fenceRetryMs: 200,
    },
    {
      net: { seed, maxDelay: 20 },
      fence: async (task, attempt) => {
        await sleep(kit.clock, rng.int(300));
        if (rng.next() < 0.25) {
          fenceFailures++;
          throw new TabshardError('TS_ERR_CONNECT_FAILED', 'node unreachable');
        }
        fenced.add(`${task}:${attempt}`);
      },
    },
  );
  const live = new Set<FreezableConn>();
  const tally: Tally = { hangs: 0, crashes: 0, lateRefused: 0, reconnects: 0 };
  const agents = Array.from({ length: 12 }, (_, i) => track(agent(kit, rng, `tab${i}`, live, tally)));
  let drops = 0;
  for (let step = 0; !agents.every((a) => a.done); step++) {
    assert.ok(step < 20_000, 'the job finishes');
    kit.clock.advance(rng.int(300));
    await turns(8);
    if (rng.next() < 0.03 && live.size > 0) {
      const victim = [...live][rng.int(live.size)];
      if (!victim.closed) {
        kit.net.drop(victim.inner);
        drops++;
      }
    }
  }
  for (const a of agents) assert.equal(a.error, undefined, String(a.error));
  return { kit, fenced, fenceFailures, tally, drops };
}

describe('exactly-once under a seeded random schedule of crashes', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: every task done exactly once; every re-run attempt fenced first`, async (ctx) => {
      const { kit, fenced, fenceFailures, tally, drops } = await run(seed);
      const st = kit.sched.status();
      assert.equal(st.state, 'done');
      assert.equal(st.iterationsDone, ITERATIONS);
      const tasks = kit.sched.tasks();
      assert.equal(tasks.length, TASKS);
      const doneEvents = new Map<number, number>();
      for (const e of kit.of('done')) doneEvents.set(e.task!, (doneEvents.get(e.task!) ?? 0) + 1);
      for (const t of tasks) {
        assert.equal(t.state, 'done');
        assert.equal(doneEvents.get(t.task), 1, `task ${t.task} counted once`);
        assert.equal(t.doneAttempt, t.attempt, `task ${t.task} done by its live attempt`);
      }
      // Every attempt > 0 that was leased was fenced (and logged so) before its lease, and no
      // attempt was counted done after it had been declared dead.
      const seen = new Set<string>();
      const dead = new Set<string>();
      for (const e of kit.events) {
        if (e.ev === 'return') dead.add(`${e.task}:${e.attempt! - 1}`);
        if (e.ev === 'done') assert.ok(!dead.has(`${e.task}:${e.attempt}`), `done of dead ${e.task}:${e.attempt}`);
        if (e.ev === 'fenced') seen.add(`${e.task}:${e.attempt}`);
        if (e.ev === 'lease' && e.attempt! > 0) {
          const k = `${e.task}:${e.attempt}`;
          assert.ok(seen.has(k) && fenced.has(k), `lease of ${k} preceded by its fence`);
        }
      }
      checkGate(kit.events, SHARDS, 1);
      assert.equal(st.reassignments, kit.of('return').length);
      const faults = tally.hangs + tally.crashes + drops;
      ctx.diagnostic(JSON.stringify({ ...tally, drops, fenceFailures, reassignments: st.reassignments }));
      assert.ok(st.reassignments > 3 && faults > 5, `faults happened (${JSON.stringify({ ...tally, drops })})`);
      assert.ok(fenceFailures > 0, 'some fences failed and were retried');
      assert.equal(st.tasks.done, TASKS);
      assert.equal(
        st.workers.reduce((n, w) => n + w.tasksDone, 0),
        TASKS,
      );
    });
  }
});
