/**
 * The task loop against real server nodes (in-memory transport): a task pulls and pushes several
 * tables, a staleness-aware push is scaled by 1 / (1 + iteration − clock), a straggler's
 * slowdown rests (f − 1)× its pull-and-compute time before the push, eager SSP reads come from
 * the subscription, and each task's report splits the loop's time. The overlap of consecutive
 * tasks: client/runner-overlap.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CapabilitySigner } from '../server/auth/capability.ts';
import type { ServerManager } from '../server/manager.ts';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type RunnerLease, type RunnerSession, TaskRunner } from './runner.ts';
import type { TaskTimes } from './task-times.ts';
import { Worker } from './worker.ts';

/** A table of job 1 with zeros and the `sum` updater (pushes add up). */
const table = (id: number, name: string, kind: 'dense' | 'sparse', keySpace: number, valueLength: number) => ({
  ...tableSpec(id, name, kind, keySpace, valueLength),
  job: 1,
});

/** The scheduler's signer in these tests: the nodes check every push and read against its capabilities. */
const signer = CapabilitySigner.generate();
const WORKER = 9;
const exp = () => Date.now() + 60_000;
/** A session's identity as a scheduler would give it: the worker id and a read capability of job 1. */
const identity = () => ({ worker: WORKER, read: signer.sign({ kind: 'read', job: 1, worker: WORKER, exp: exp() }) });
/** `l` with the task capability a scheduler would sign for it (both tables, any key). */
function signed(l: RunnerLease): RunnerLease {
  const tables = [{ id: 1 }, { id: 2 }];
  return {
    ...l,
    cap: signer.sign({ kind: 'task', job: 1, worker: WORKER, task: l.task, attempt: l.attempt, tables, exp: exp() }),
  };
}

/** Hands out `leases` in turn, then reports the job done; records what each task reported. */
function scripted(leases: RunnerLease[]) {
  const reports: Array<{ task: number; computeMs: number }> = [];
  const session: RunnerSession = {
    ...identity(),
    async next() {
      const l = leases.shift();
      return l ? signed(l) : null;
    },
    async done(lease, r) {
      reports.push({ task: lease.task, computeMs: r.computeMs });
    },
  };
  return { session, reports };
}

/**
 * A fake clock for the runner: `now` and `sleep` on it (sleeps recorded in `slept`), and an app
 * of one 3-key dense pull whose gradient takes `gradientMs` on it.
 */
function fakeClock(gradientMs: number) {
  let t = 0;
  const slept: number[] = [];
  const options = {
    now: () => t,
    sleep: async (ms: number) => {
      slept.push(ms);
      t += ms;
    },
    app: {
      shard: async (index: number) => ({ index }),
      pulls: () => [{ table: 'dense', keys: { begin: 0, end: 3 } }],
      gradient: async () => {
        t += gradientMs;
        return { grads: [new Float32Array(3)], loss: 0, examples: 1 };
      },
    },
  };
  return { slept, options };
}

describe('task runner', () => {
  let cluster: TestCluster;
  let manager: ServerManager;
  let worker: Worker;

  before(async () => {
    const net = new MemoryNetwork({ seed: 11 });
    cluster = await testCluster([table(1, 'emb', 'sparse', 2 ** 40, 2), table(2, 'dense', 'dense', 3, 1)], {
      net,
      ids: ['n1', 'n2'],
      adminToken: 'runner-test',
      capabilityKey: signer.publicKey(),
    });
    manager = cluster.mgr;
    // The layout comes from the manager (as a page gets it from the gateway): the nodes answer RING only with a capability.
    worker = await Worker.connect({ seed: async () => cluster.mgr.info, dialers: { memory: cluster.dialer }, job: 1 });
  });

  after(async () => {
    worker.close();
    await cluster.close();
  });

  it('pulls and pushes every table of the app; a stale push is scaled by 1 / (1 + staleness)', async () => {
    const keys = new Float64Array([3, 2 ** 39 + 5]);
    const seen: Float32Array[][] = [];
    const { session } = scripted([
      { task: 1, attempt: 0, shard: 0, iteration: 0, clock: 0, stalenessLr: true },
      // Iteration 2 granted at clock 0: two iterations stale, so its push counts 1/3.
      { task: 2, attempt: 0, shard: 0, iteration: 2, clock: 0, stalenessLr: true },
      // Without the option the same staleness pushes at full weight.
      { task: 3, attempt: 0, shard: 0, iteration: 2, clock: 0 },
    ]);
    const runner = new TaskRunner({
      worker,
      session,
      app: {
        shard: async (index) => ({ index }),
        pulls: () => [
          { table: 'emb', keys },
          { table: 'dense', keys: { begin: 0, end: 3 } },
        ],
        gradient: async (_s, values) => {
          seen.push(values.map((v) => Float32Array.from(v)));
          return { grads: [new Float32Array(4).fill(3), new Float32Array([3, 6, 9])], loss: 1, examples: 2 };
        },
      },
    });
    const totals = await runner.run();
    assert.equal(totals.tasks, 3);
    assert.equal(totals.pulledValues, 3 * (4 + 3));
    assert.deepEqual(
      seen.map((v) => v.map((a) => [...a])),
      [
        [
          [0, 0, 0, 0],
          [0, 0, 0],
        ],
        [
          [3, 3, 3, 3],
          [3, 6, 9],
        ],
        [
          [4, 4, 4, 4],
          [4, 8, 12],
        ],
      ],
    );
    assert.deepEqual([...(await manager.pull(1, 2, { begin: 0, end: 3 }))], [7, 14, 21]);
  });

  it('a 3× straggler rests twice its pull-and-compute time before pushing, and reports it as compute', async () => {
    const { session, reports } = scripted([{ task: 4, attempt: 0, shard: 1, iteration: 0 }]);
    const clock = fakeClock(40);
    await new TaskRunner({ worker, session, slowdown: 3, ...clock.options }).run();
    assert.deepEqual(clock.slept, [80]);
    assert.deepEqual(reports, [{ task: 4, computeMs: 120 }]);
    assert.throws(() => new TaskRunner({ worker, session, slowdown: 0.5, app: null as never }), {
      code: 'TS_ERR_INVALID_ARGUMENT',
    });
  });

  it('a stalling worker rests `ms` after computing every `every`-th task, and reports it as compute', async () => {
    const leases = [1, 2, 3, 4, 5].map((task) => ({ task, attempt: 0, shard: 0, iteration: task - 1 }));
    const { session, reports } = scripted(leases);
    const clock = fakeClock(10);
    await new TaskRunner({ worker, session, stall: { ms: 3000, every: 2 }, ...clock.options }).run();
    assert.deepEqual(clock.slept, [3000, 3000], 'after tasks 2 and 4');
    assert.deepEqual(
      reports.map((r) => r.computeMs),
      [10, 3010, 10, 3010, 10],
    );
    for (const stall of [
      { ms: 5, every: 0 },
      { ms: -1, every: 2 },
      { ms: 5, every: 1.5 },
    ])
      assert.throws(() => new TaskRunner({ worker, session, stall, app: null as never }), {
        code: 'TS_ERR_INVALID_ARGUMENT',
      });
  });

  it('eager SSP: the second task of a shard reads the published values, with no pull', async () => {
    const keys = new Float64Array([7, 2 ** 38 + 1]);
    const seen: number[][] = [];
    let pulledBefore2 = -1;
    const leases: RunnerLease[] = [
      { task: 11, attempt: 0, shard: 3, iteration: 0, clock: 0, tau: 0, eager: true },
      { task: 12, attempt: 0, shard: 3, iteration: 1, clock: 1, tau: 0, eager: true },
    ];
    // As under BSP: the lease of iteration 1 is held until task 11 is done, then the driver has
    // the servers publish clock 1 to subscribers.
    let done11: () => void = () => {};
    const iteration0 = new Promise<void>((resolve) => {
      done11 = resolve;
    });
    const session: RunnerSession = {
      ...identity(),
      async next() {
        const l = leases.shift() ?? null;
        if (l?.task === 12) {
          await iteration0;
          await manager.publish(1, 1);
          pulledBefore2 = worker.bytes.pulled;
        }
        return l && signed(l);
      },
      async done(lease) {
        if (lease.task === 11) done11();
      },
    };
    const runner = new TaskRunner({
      worker,
      session,
      app: {
        shard: async (index) => ({ index }),
        pulls: () => [{ table: 'emb', keys }],
        gradient: async (_s, values) => {
          seen.push([...values[0]]);
          return { grads: [new Float32Array([1, 2, 3, 4])], loss: 0, examples: 1 };
        },
      },
    });
    const before = [...(await manager.pull(1, 1, keys))];
    await runner.run();
    assert.deepEqual(seen, [before, before.map((v, i) => v + [1, 2, 3, 4][i])]);
    assert.equal(worker.bytes.pulled, pulledBefore2, 'the second task pulled nothing');
    assert.ok(worker.bytes.published > 0);
  });

  it('reports what each task cost: the loop time split into rest, wait (lease part apart) and compute; frames', async () => {
    let t = 0;
    const times: TaskTimes[] = [];
    const reported: Array<{ computeMs: number; waitMs: number }> = [];
    const leases: RunnerLease[] = [
      { task: 21, attempt: 0, shard: 0, iteration: 0 },
      { task: 22, attempt: 0, shard: 1, iteration: 0 },
    ];
    const frames0 = worker.framesSent;
    const runner = new TaskRunner({
      worker,
      now: () => t,
      gate: async () => {
        t += 7; // resting under the CPU share
      },
      session: {
        ...identity(),
        async next() {
          t += 5; // the scheduler holds the LEASE
          const l = leases.shift();
          return l ? signed(l) : null;
        },
        async done(_l, r) {
          reported.push({ computeMs: r.computeMs, waitMs: r.waitMs });
        },
      },
      ontask: (x) => times.push(x),
      app: {
        shard: async (index) => {
          t += 3; // fetching the shard
          return { index };
        },
        pulls: () => [{ table: 'dense', keys: { begin: 0, end: 3 } }],
        gradient: async () => {
          t += 40;
          return { grads: [new Float32Array(3)], loss: 0, examples: 1 };
        },
      },
    });
    await runner.run();
    assert.deepEqual(
      times.map((x) => [x.task, x.restMs, x.leaseWaitMs, x.waitMs, x.computeMs, x.cycleMs, x.leaseMs]),
      [
        [21, 7, 5, 8, 40, 55, 5],
        [22, 7, 5, 8, 40, 55, 5],
      ],
    );
    // TASK_DONE leaves out the lease wait: the scheduler counts the time it held the LEASE.
    assert.deepEqual(reported, [
      { computeMs: 40, waitMs: 3 },
      { computeMs: 40, waitMs: 3 },
    ]);
    // A pull and a push of 3 keys on a 2-node ring: each as many frames as ring runs; all are a task's.
    assert.ok(times.every((x) => x.frames >= 2));
    assert.equal(times[0].frames + times[1].frames, worker.framesSent - frames0);
  });

  it('stop() while the gate is closed (paused) asks for no further lease once the gate opens', async () => {
    let open: () => void = () => {};
    let gated = 0;
    let asked = 0;
    const runner = new TaskRunner({
      worker,
      // The first pass goes through; the second waits, as a paused page's gate does.
      gate: () => (++gated === 1 ? Promise.resolve() : new Promise<void>((r) => (open = r))),
      session: {
        ...identity(),
        async next() {
          asked++;
          return signed({ task: 31 + asked, attempt: 0, shard: 0, iteration: 0 });
        },
        async done() {},
      },
      app: {
        shard: async (index) => ({ index }),
        pulls: () => [{ table: 'dense', keys: { begin: 0, end: 3 } }],
        gradient: async () => ({ grads: [new Float32Array(3)], loss: 0, examples: 1 }),
      },
    });
    const run = runner.run();
    while (gated < 2) await new Promise((r) => setImmediate(r)); // the second task waits at the gate
    runner.stop();
    open();
    const end = await run;
    assert.equal(end.state, 'stopped');
    assert.equal(asked, 1, 'one LEASE: the one before stop()');
  });
});
