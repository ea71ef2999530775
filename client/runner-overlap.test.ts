/**
 * The overlapping task loop (client/runner.ts, `prefetch: 1`) against a real scheduler and real
 * server nodes on the memory network: the next LEASE goes out while the last task's push ACKs are
 * still held back, its reads see those pushes, TASK_DONE waits for the ACKs, every push carries
 * its own task's stamp, and stop, abandon (fenced pushes, refused TASK_DONE) and failures still
 * behave. The runner sees the push ACKs through a spy on `worker.wait` that can hold them; the
 * scheduler's clock is a ManualClock that never moves, so no lease expires by accident.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CapabilitySigner, type Claims } from '../server/auth/capability.ts';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import { schedKit, until } from '../server/scheduler/testkit.ts';
import { TabshardError } from '../shared/errors.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type RunnerApp, type RunnerLease, type RunnerSession, TaskRunner } from './runner.ts';
import { SchedulerSession } from './session.ts';
import type { TaskTimes } from './task-times.ts';
import { Worker } from './worker.ts';

const KEYS = new Float64Array([1, 2 ** 30 + 7]);
const DENSE = { begin: 0, end: 4 };

/**
 * Records what the runner does with `worker` in order (`push T@A` with the stamp it carried,
 * `read T`, `ack T`) and holds push ACKs back while `hold` is true (until `release()`).
 */
function spy(worker: Worker) {
  const log: string[] = [];
  const held: Array<() => void> = [];
  const state = { hold: false, task: 0 };
  const realTable = worker.table.bind(worker);
  const realWait = worker.wait.bind(worker);
  const pushes = new Map<number, string>();
  const wrapped = new Set<unknown>();
  worker.table = (name) => {
    const t = realTable(name);
    if (wrapped.has(t)) return t; // the worker hands out one KvTable per name
    wrapped.add(t);
    const push = t.push.bind(t);
    const pull = t.pull.bind(t);
    t.push = (keys, values, o) => {
      const s = o?.task ?? { task: 0, attempt: 0 };
      const ts = push(keys, values, o);
      pushes.set(ts, `${s.task}`);
      log.push(`push ${s.task}@${s.attempt} ${name}`);
      return ts;
    };
    t.pull = (keys, o) => {
      log.push(`read ${state.task}`);
      return pull(keys, o);
    };
    return t;
  };
  worker.wait = (ts) => {
    const p = realWait(ts);
    const task = pushes.get(ts);
    if (task === undefined) return p;
    return p.then(async (v) => {
      if (state.hold) await new Promise<void>((r) => held.push(r));
      log.push(`ack ${task}`);
      return v;
    });
  };
  return {
    log,
    state,
    release() {
      state.hold = false;
      for (const r of held.splice(0)) r();
    },
    restore() {
      worker.table = realTable;
      worker.wait = realWait;
    },
  };
}

/** The app: a sparse and a dense table; the gradient is the task id in every float; records what each task read. */
function app(reads: Map<number, number[]>, current: { task: number }): RunnerApp {
  return {
    shard: async (index) => ({ index }),
    pulls: () => [
      { table: 'emb', keys: KEYS },
      { table: 'dense', keys: DENSE },
    ],
    gradient: async (_s, values) => {
      reads.set(current.task, [...values[0], ...values[1]]);
      return {
        grads: [new Float32Array(2).fill(current.task), new Float32Array(4).fill(current.task)],
        loss: 0,
        examples: 1,
      };
    },
  };
}

/** Wraps a session: logs `lease? ` (a LEASE sent), `lease T` (granted), `done T` (sent), and tracks the task being read. */
function logged(s: RunnerSession, log: string[], current: { task: number }): RunnerSession {
  return {
    worker: s.worker,
    read: s.read,
    async next() {
      log.push('lease?');
      const l = await s.next();
      if (l) {
        log.push(`lease ${l.task}`);
        current.task = l.task;
      }
      return l;
    },
    async done(l: RunnerLease, r) {
      log.push(`done ${l.task}`);
      return s.done(l, r);
    },
  };
}

/** The scheduler's signer: the nodes check every push and read against the capabilities it signs. */
const signer = CapabilitySigner.generate();
const capabilities = { sign: (c: Claims) => signer.sign(c), tables: () => [{ id: 1 }, { id: 2 }, { id: 3 }] };
/** A hand-made session's worker id, and `l` with the task capability a scheduler would sign for it. */
const WORKER = 77;
const signed = (l: RunnerLease | null): RunnerLease | null =>
  l && {
    ...l,
    cap: capabilities.sign({
      kind: 'task',
      job: 1,
      worker: WORKER,
      task: l.task,
      attempt: l.attempt,
      tables: capabilities.tables(),
      // Later than the scheduler's (120 s): a node keeps, per task and attempt, the grant that lives longest.
      exp: Date.now() + 600_000,
    }),
  };

describe('overlapping task loop', () => {
  let cluster: TestCluster;
  let worker: Worker;
  let admin: Worker;
  const job = 1;

  before(async () => {
    const net = new MemoryNetwork({ seed: 5, maxDelay: 3 });
    cluster = await testCluster(
      [
        { ...tableSpec(1, 'emb', 'sparse', 2 ** 40, 1), job },
        { ...tableSpec(2, 'dense', 'dense', 4, 1), job },
        { ...tableSpec(3, 'tasks', 'dense', 64, 1), job },
      ],
      { net, ids: ['n1', 'n2', 'n3'], adminToken: 'overlap-test', capabilityKey: signer.publicKey() },
    );
    // The layout comes from the manager (as a page gets it from the gateway): the nodes answer RING only with a capability.
    worker = await Worker.connect({ seed: async () => cluster.mgr.info, dialers: { memory: cluster.dialer }, job });
    await worker.connectAll();
    // The operator's client (the admin token): resets the tables between tests with ad-hoc pushes.
    admin = await Worker.connect({
      seed: async () => cluster.mgr.info,
      dialers: { memory: cluster.dialer },
      job,
      adminToken: 'overlap-test',
    });
  });

  after(async () => {
    admin.close();
    worker.close();
    await cluster.close();
  });

  const table = async (id: number, keys: Float64Array | { begin: number; end: number }) => [
    ...(await cluster.mgr.pull(job, id, keys)),
  ];
  const reset = async () => {
    for (const [id, keys] of [
      [1, KEYS],
      [2, DENSE],
      [3, { begin: 0, end: 64 }],
    ] as const) {
      const v = await cluster.mgr.pull(job, id, keys);
      const ts = admin.table(['', 'emb', 'dense', 'tasks'][id]).push(
        keys,
        v.map((x) => -x),
      );
      await admin.wait(ts);
    }
  };

  it('asks for the next lease before the ACKs, reads after the pushes, sends TASK_DONE after the ACKs', async () => {
    await reset();
    const kit = schedKit({ job, shards: 2, iterations: 2, tau: 0 }, { capabilities });
    const session = await SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
    const w = spy(worker);
    const reads = new Map<number, number[]>();
    const times: TaskTimes[] = [];
    const inFlight: number[] = [];
    try {
      const runner = new TaskRunner({
        worker,
        session: logged(session, w.log, w.state),
        app: app(reads, w.state),
        auditTable: 'tasks',
        ontask: (t) => times.push(t),
        onevent: (ev) => inFlight.push(ev.inFlight),
      });
      w.state.hold = true;
      const run = runner.run();
      // Task 1's ACKs are held: the loop has asked for (and been granted) task 2 and read it.
      await until(() => w.log.includes('read 2'), 'task 2 read while task 1 is unacknowledged');
      assert.ok(!w.log.includes('ack 1') && !w.log.includes('done 1'));
      // Under BSP task 3 (iteration 1) waits for tasks 1 and 2, whose ACKs are held.
      await until(() => w.log.filter((l) => l === 'lease?').length === 3, 'the LEASE for task 3 sent');
      assert.ok(!w.log.includes('lease 3'), 'held by the consistency gate');
      assert.equal(inFlight.at(-1), 2, 'tasks 1 and 2 are held (leased, not done)');
      w.release();
      const totals = await run;
      assert.equal(totals.state, 'done');
      assert.equal(totals.inFlight, 0);
      assert.equal(Math.max(...inFlight), 2, 'never more than the task finishing and the next');
      assert.equal(totals.tasks, 4);
      const at = (e: string) => w.log.indexOf(e);
      const asks = w.log.flatMap((l, i) => (l === 'lease?' ? [i] : []));
      assert.ok(asks[1] < at('push 1@0 emb'), "the next LEASE is sent before task 1's pushes");
      assert.ok(at('read 2') > at('push 1@0 tasks'), "task 2's reads follow every push of task 1");
      for (const t of [1, 2, 3, 4]) {
        assert.ok(at(`done ${t}`) > at(`ack ${t}`), `TASK_DONE ${t} after its ACKs`);
        assert.deepEqual(
          w.log.filter((l) => l.startsWith(`push ${t}@`)),
          [`push ${t}@0 emb`, `push ${t}@0 dense`, `push ${t}@0 tasks`],
          `task ${t}'s pushes carry its stamp`,
        );
      }
      assert.equal(w.log.filter((l) => l.startsWith('push 0@')).length, 0, 'no unstamped push');
      // Each task read every earlier task's push (the sum updater adds the task ids): 0, 1, 1+2, 1+2+3.
      assert.deepEqual(
        [1, 2, 3, 4].map((t) => reads.get(t)![0]),
        [0, 1, 3, 6],
      );
      assert.deepEqual(await table(1, KEYS), [10, 10]);
      assert.deepEqual((await table(3, { begin: 0, end: 4 })).join(), '1,1,1,1');
      assert.deepEqual(
        times.map((t) => t.task),
        [1, 2, 3, 4],
      );
      assert.ok(times.every((t) => t.frames > 0 && !t.abandoned));
    } finally {
      w.release();
      w.restore();
      session.close();
    }
  });

  it('prefetch 0 sends the next LEASE only after the TASK_DONE', async () => {
    await reset();
    const kit = schedKit({ job, shards: 2, iterations: 1, tau: 0 }, { capabilities });
    const session = await SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
    const w = spy(worker);
    try {
      await new TaskRunner({
        worker,
        prefetch: 0,
        session: logged(session, w.log, w.state),
        app: app(new Map(), w.state),
      }).run();
      const order = w.log.filter((l) => l.startsWith('lease') || l.startsWith('done') || l.startsWith('ack'));
      assert.deepEqual(order, [
        'lease?',
        'lease 1',
        'ack 1',
        'ack 1',
        'done 1',
        'lease?',
        'lease 2',
        'ack 2',
        'ack 2',
        'done 2',
        'lease?',
      ]);
    } finally {
      w.restore();
      session.close();
    }
  });

  it('stop(): the task asked for ahead still finishes, no LEASE follows, nothing is left leased', async () => {
    await reset();
    const kit = schedKit({ job, shards: 4, iterations: 1, tau: 0 }, { capabilities });
    const session = await SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
    const w = spy(worker);
    try {
      const runner = new TaskRunner({ worker, session: logged(session, w.log, w.state), app: app(new Map(), w.state) });
      w.state.hold = true;
      const run = runner.run();
      await until(() => w.log.includes('read 2'), 'task 2 under way');
      runner.stop();
      w.release();
      const totals = await run;
      assert.equal(totals.state, 'stopped');
      assert.equal(totals.tasks, 2);
      assert.equal(w.log.filter((l) => l === 'lease?').length, 2);
      assert.deepEqual(kit.sched.status().tasks, { pending: 2, leased: 0, fencing: 0, done: 2, total: 4 });
    } finally {
      w.release();
      w.restore();
      session.close();
    }
  });

  it('abandons a task whose capability expires while it runs (a slow link outlasted it) and carries on', async () => {
    await reset();
    // Task 7's capability lives 3 s: presented with its reads, it has lapsed by the time the
    // gradient (which waits for that moment) is pushed.
    const exp = Date.now() + 3000;
    const short = { ...signed({ task: 7, attempt: 0, shard: 0, iteration: 0 })! };
    short.cap = capabilities.sign({
      kind: 'task',
      job: 1,
      worker: WORKER,
      task: 7,
      attempt: 0,
      tables: capabilities.tables(),
      exp,
    });
    const leases: RunnerLease[] = [short, signed({ task: 8, attempt: 0, shard: 0, iteration: 0 })!];
    const done: number[] = [];
    const times: TaskTimes[] = [];
    const current = { task: 0 };
    const session: RunnerSession = {
      worker: WORKER,
      async next() {
        const l = leases.shift() ?? null;
        if (l) current.task = l.task;
        return l;
      },
      async done(l) {
        done.push(l.task);
      },
    };
    const plain = app(new Map(), current);
    const lapsing: RunnerApp = {
      ...plain,
      async gradient(shard, values) {
        if (current.task === 7) while (Date.now() <= exp) await new Promise((r) => setTimeout(r, exp + 1 - Date.now()));
        return plain.gradient(shard, values);
      },
    };
    const totals = await new TaskRunner({
      worker,
      session,
      app: lapsing,
      ontask: (t) => times.push(t),
      prefetch: 0,
    }).run();
    assert.equal(totals.state, 'done');
    assert.deepEqual(done, [8]);
    assert.deepEqual(times.map((t) => [t.task, t.abandoned ?? false]).sort(), [
      [7, true],
      [8, false],
    ]);
  });

  it('abandons a task whose pushes are fenced, or whose TASK_DONE is refused, and carries on; another error fails the run', async () => {
    await reset();
    // Task 1's attempt 0 is fenced on every node: its pushes are refused in the background.
    for (const id of [1, 2]) await cluster.mgr.fence(job, id, 1, 1);
    const leases: RunnerLease[] = [1, 2, 3].map((task) => ({ task, attempt: 0, shard: 0, iteration: 0 }));
    const done: number[] = [];
    const times: TaskTimes[] = [];
    const current = { task: 0 };
    const session: RunnerSession = {
      worker: WORKER,
      async next() {
        const l = leases.shift() ?? null;
        if (l) current.task = l.task;
        return signed(l);
      },
      async done(l) {
        if (l.task === 2) throw new TabshardError('TS_ERR_NOT_LEASED', 'evicted meanwhile');
        done.push(l.task);
      },
    };
    const totals = await new TaskRunner({
      worker,
      session,
      app: app(new Map(), current),
      ontask: (t) => times.push(t),
    }).run();
    assert.equal(totals.state, 'done');
    assert.deepEqual(done, [3]);
    assert.equal(totals.tasks, 1);
    assert.deepEqual(times.map((t) => [t.task, t.abandoned ?? false]).sort(), [
      [1, true],
      [2, true],
      [3, false],
    ]);
    // A TASK_DONE refused for any other reason ends the loop with that error, even from the background.
    const more: RunnerLease[] = [4, 5, 6].map((task) => ({ task, attempt: 0, shard: 0, iteration: 0 }));
    const asked: number[] = [];
    const failing: RunnerSession = {
      worker: WORKER,
      async next() {
        const l = more.shift() ?? null;
        if (l) asked.push(l.task);
        return signed(l);
      },
      async done() {
        throw new TabshardError('TS_ERR_JOB_DONE', 'stopped');
      },
    };
    await assert.rejects(new TaskRunner({ worker, session: failing, app: app(new Map(), current) }).run(), {
      code: 'TS_ERR_JOB_DONE',
    });
    assert.ok(asked.length < 3, 'the loop stopped asking once the TASK_DONE failed');
  });
});
