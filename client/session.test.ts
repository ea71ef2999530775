/**
 * The worker side of the scheduler session against a scripted scheduler: it honours `{wait}`
 * on the injected clock, heartbeats at a fixed cadence while a lease is held, stops on done,
 * and reports a refused heartbeat through `onrevoked`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../shared/clock-source.ts';
import { TabshardError } from '../shared/errors.ts';
import { encodeError } from '../shared/protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from '../shared/protocol/frame.ts';
import { encodeAck } from '../shared/protocol/kv.ts';
import { encodeTask, encodeWelcome, parseHeartbeat, type TaskReply } from '../shared/protocol/sched.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import type { Conn } from '../shared/transport/types.ts';
import { SchedulerSession } from './session.ts';

const flush = async (n = 30) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A scheduler that answers LEASEs from a script and refuses heartbeats once told to. */
function scripted(net: MemoryNetwork, tasks: TaskReply[]) {
  const seen: Array<{ type: number; at: number; body?: unknown }> = [];
  const state = { refuse: false, clock: new ManualClock(0) };
  const l = net.listen('sched');
  l.onconnection = (conn: Conn) => {
    conn.onmessage = (m) => {
      const f: Frame = decodeFrame(m);
      seen.push({ type: f.type, at: state.clock.now() });
      if (f.type === MsgType.HELLO)
        conn.send(
          encodeWelcome(f.requestId, {
            worker: 5,
            job: 2,
            shards: 4,
            iterations: 1,
            leaseMs: 1000,
            heartbeatMs: 300,
            app: 'x',
          }),
        );
      else if (f.type === MsgType.LEASE) conn.send(encodeTask(f.requestId, tasks.shift() ?? { done: true }));
      else if (f.type === MsgType.HEARTBEAT) {
        seen[seen.length - 1].body = parseHeartbeat(f);
        conn.send(
          state.refuse ? encodeError(f.requestId, new TabshardError('TS_ERR_LEASE_EXPIRED')) : encodeAck(f.requestId),
        );
      } else conn.send(encodeAck(f.requestId));
    };
  };
  return { seen, state };
}

describe('SchedulerSession', () => {
  it('waits on the clock, heartbeats every heartbeatMs while leased, stops on done, reports revocation', async () => {
    const net = new MemoryNetwork({ seed: 4, maxDelay: 2 });
    const lease = { task: 3, attempt: 0, shard: 2, iteration: 0, leaseMs: 1000, clock: 0, tau: 0 };
    const { seen, state } = scripted(net, [{ wait: 500 }, lease, { ...lease, task: 4, shard: 3 }]);
    const clock = state.clock;
    const s = await SchedulerSession.open(await net.dialer().dial('memory://sched'), {}, { clock, timeoutMs: 0 });
    assert.equal(s.worker, 5);
    assert.equal(s.config.heartbeatMs, 300);
    let got: unknown = 'pending';
    s.next().then((l) => {
      got = l;
    });
    await flush();
    assert.equal(got, 'pending', 'waits 500 ms before asking again');
    clock.advance(499);
    await flush();
    assert.equal(seen.filter((x) => x.type === MsgType.LEASE).length, 1);
    clock.advance(1);
    await flush();
    assert.deepEqual(got, lease);
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await flush();
    }
    const beats = seen.filter((x) => x.type === MsgType.HEARTBEAT);
    assert.deepEqual(
      beats.map((b) => b.at),
      [800, 1100, 1400],
    );
    assert.deepEqual(beats[0].body, { task: 3, attempt: 0 });
    await s.done(lease, { examples: 1, computeMs: 1, waitMs: 0 });
    clock.advance(1000);
    await flush();
    assert.equal(seen.filter((x) => x.type === MsgType.HEARTBEAT).length, 3, 'no heartbeat after done');
    const revoked: string[] = [];
    s.onrevoked = (l, err) => revoked.push(`${l.task}:${err.code}`);
    const second = (await s.next())!;
    state.refuse = true;
    clock.advance(300);
    await flush();
    assert.deepEqual(revoked, ['4:TS_ERR_LEASE_EXPIRED']);
    clock.advance(3000);
    await flush();
    assert.equal(seen.filter((x) => x.type === MsgType.HEARTBEAT).length, 4, 'heartbeats stop once refused');
    assert.equal(second.task, 4);
    assert.equal(await s.next(), null);
    s.close();
    assert.equal(clock.pending, 0);
  });
});
