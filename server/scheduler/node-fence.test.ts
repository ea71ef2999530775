/**
 * End to end with a real ServerNode and the worker library on the memory network: when a
 * lease expires, the scheduler's fence (through the server manager) makes the node refuse the
 * dead attempt's pushes with TS_ERR_LEASE_EXPIRED, while the new attempt's pushes are applied,
 * each (task, seq) at most once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchedulerSession } from '../../client/session.ts';
import { Worker } from '../../client/worker.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { ServerManager } from '../manager.ts';
import { ServerNode } from '../node/node.ts';
import { codeOf, FreezableConn, schedKit, track, until } from './testkit.ts';

const JOB = 3;
const TABLE = 1;

describe('scheduler fences a real server node', () => {
  it('refuses the dead attempt’s push and applies the new attempt’s', async () => {
    const net = new MemoryNetwork({ seed: 9, maxDelay: 3 });
    const node = new ServerNode('n1');
    node.listen(net.listen('n1'));
    const mgr = new ServerManager(net.dialer(), [
      { id: 'n1', addresses: { memory: 'memory://n1' }, control: 'memory://n1' },
    ]);
    await mgr.start();
    await mgr.defineTable({
      job: JOB,
      id: TABLE,
      name: 'w',
      kind: 'dense',
      keySpace: 4,
      valueLength: 1,
      updater: 'sum',
      params: {},
      init: { kind: 'zeros' },
    });
    const kit = schedKit(
      { job: JOB, shards: 1, iterations: 1, leaseMs: 10_000, heartbeatMs: 2_000 },
      { network: net, fence: (task, attempt) => mgr.fence(JOB, TABLE, task, attempt) },
    );
    const opts = { clock: kit.clock, timeoutMs: 0 };
    const conn = new FreezableConn(await kit.dial());
    const sa = await SchedulerSession.open(conn, { agent: 'a' }, opts);
    const sb = await SchedulerSession.open(await kit.dial(), { agent: 'b' }, opts);
    const worker = (id: number) =>
      Worker.connect({ seed: 'memory://n1', dialers: { memory: net.dialer() }, job: JOB, workerId: id });
    const [wa, wb] = [await worker(sa.worker), await worker(sb.worker)];
    const keys = { begin: 0, end: 4 };
    const ones = new Float32Array(4).fill(1);
    const tens = new Float32Array(4).fill(10);

    // Attempt 0 pushes its first slice, then its tab hangs.
    const la = (await sa.next())!;
    assert.deepEqual([la.task, la.attempt], [1, 0]);
    wa.setTask(la.task, la.attempt);
    await wa.wait(wa.table('w').push(keys, ones));
    conn.frozen = true;
    const held = track(sb.next());
    await kit.advance(12_000);
    await until(() => held.done, 'task 1 leased again after its fence');
    const lb = held.value!;
    assert.deepEqual([lb.task, lb.attempt], [1, 1]);

    // The dead attempt's second push is refused by the node.
    assert.equal(await codeOf(wa.wait(wa.table('w').push(keys, tens))), 'TS_ERR_LEASE_EXPIRED');
    // The new attempt re-runs the task: its first push is a duplicate, its second is applied.
    wb.setTask(lb.task, lb.attempt);
    await wb.wait(wb.table('w').push(keys, ones));
    await wb.wait(wb.table('w').push(keys, tens));
    await sb.done(lb, { examples: 4, computeMs: 1, waitMs: 0 });
    assert.deepEqual([...(await wb.wait(wb.table('w').pull(keys)))!], [11, 11, 11, 11]);
    const t = node.stats().tables.find((x) => x.name === 'w')!;
    assert.deepEqual([t.pushes, t.duplicates], [2, 1]);
    assert.equal(kit.sched.status().state, 'done');

    for (const x of [wa, wb, sa, sb]) x.close();
    mgr.close();
    await node.close();
  });
});
