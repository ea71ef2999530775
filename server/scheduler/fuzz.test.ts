/**
 * A live scheduler session fed 1,200 random and mutated frames: every one is answered exactly
 * once (a coded ERROR for the bad ones, never TS_ERR_INTERNAL), while another worker's session
 * keeps leasing and finishing tasks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchedulerSession } from '../../client/session.ts';
import { isErrorCode } from '../../shared/errors.ts';
import { decodeObject, encodeJson } from '../../shared/protocol/control.ts';
import { emptyFrame, encodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import { encodePush } from '../../shared/protocol/kv.ts';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTaskDone,
  parseTask,
  parseWelcome,
} from '../../shared/protocol/sched.ts';
import { createRng, type Rng } from '../../shared/rng.ts';
import { concatParts } from '../../shared/transport/types.ts';
import { codeOf, RawSession, schedKit, turns } from './testkit.ts';

const KEYS = ['task', 'attempt', 'examples', 'computeMs', 'waitMs', 'loss', 'role', 'worker', 'agent', 'transport'];

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 1 ? 6 : 8)) {
    case 0:
      return r.int(5);
    case 1:
      return [-1, 0.5, 2 ** 32, 2 ** 53, -0, 1e308][r.int(6)];
    case 2:
      return ['', 'worker', 'x'.repeat(r.int(300)), '1'][r.int(4)];
    case 3:
      return null;
    case 4:
      return r.next() < 0.5;
    case 5:
      return r.int(60);
    case 6:
      return Array.from({ length: r.int(3) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(6); i > 0; i--) o[KEYS[r.int(KEYS.length)]] = randomValue(r, depth + 1);
      return o;
    }
  }
}

const bytes = (parts: Uint8Array[]) => concatParts(parts);

/** One random or mutated message. */
function fuzzMessage(r: Rng): Uint8Array {
  const id = r.int(2 ** 32);
  const valid = [
    () => bytes(encodeSchedHello(id, { agent: 'fuzz' })),
    () => bytes(encodeLease(id)),
    () => bytes(encodeHeartbeat(id, { task: 1 + r.int(40), attempt: r.int(3) })),
    () => bytes(encodeTaskDone(id, { task: 1 + r.int(40), attempt: r.int(2), examples: 1, computeMs: 1, waitMs: 0 })),
    () => bytes(encodeJson(MsgType.RING, id, {})),
    () => bytes(encodeJson(MsgType.FENCE, id, { table: 1, task: 1, attempt: 9 })),
    () => bytes(encodeJson(MsgType.TASK, id, { done: true })),
    () =>
      bytes(
        encodePush({
          requestId: id,
          job: 3,
          table: 1,
          clock: 0,
          task: null,
          keys: { kind: 'range', begin: 0, end: 2 },
          values: Float32Array.of(1, 2),
        }),
      ),
  ];
  const base = () => valid[r.int(valid.length)]();
  switch (r.int(7)) {
    case 0:
      return Uint8Array.from({ length: r.int(80) }, () => r.int(256));
    case 1: {
      const m = base();
      for (let i = 1 + r.int(4); i > 0; i--) m[r.int(m.length)] = r.int(256);
      return m;
    }
    case 2: {
      const m = base();
      return m.subarray(0, r.int(m.length));
    }
    case 3: {
      const type = [MsgType.HELLO, MsgType.LEASE, MsgType.HEARTBEAT, MsgType.TASK_DONE][r.int(4)];
      return bytes(encodeJson(type, id, randomValue(r)));
    }
    case 4: {
      const type = [MsgType.HEARTBEAT, MsgType.TASK_DONE, MsgType.HELLO][r.int(3)];
      const body = Uint8Array.from({ length: r.int(20) }, () => r.int(256));
      return bytes(encodeFrame({ ...emptyFrame(type, id), body }));
    }
    case 5:
      return bytes(encodeJson(r.int(256) as MsgType, id, {}));
    default:
      return base();
  }
}

describe('scheduler session under random frames', () => {
  it('answers 1,200 random/mutated frames with coded errors while another session progresses', async () => {
    // Random LEASEs pile up held requests; the lease cap is tested on its own (leases.test.ts).
    const kit = schedKit({ shards: 10, iterations: 100, tau: null, holdMs: 1_000, maxLeases: 10_000 });
    const fuzz = new RawSession(await kit.dial());
    parseWelcome(await fuzz.call((id) => encodeSchedHello(id, {})));
    const good = await SchedulerSession.open(await kit.dial(), {}, { clock: kit.clock, timeoutMs: 0 });
    const r = createRng(2024);
    const before = fuzz.replies.length;
    const N = 1_200;
    let progressed = 0;
    for (let i = 0; i < N; i++) {
      fuzz.send([fuzzMessage(r)]);
      if (i % 20 === 0) {
        const l = (await good.next())!;
        await good.done(l, { examples: 1, computeMs: 1, waitMs: 0 });
        progressed++;
      }
      await turns(2);
    }
    kit.clock.advance(1_000); // answers any LEASE still held
    await turns(200);
    const replies = fuzz.replies.slice(before);
    assert.equal(replies.length, N, 'every frame answered exactly once');
    const codes = new Map<string, number>();
    for (const f of replies) {
      if (f.type !== MsgType.ERROR) {
        assert.ok([MsgType.ACK, MsgType.TASK, MsgType.HELLO].includes(f.type as 0x13), `reply type ${f.type}`);
        continue;
      }
      const code = decodeObject(f).code;
      assert.ok(isErrorCode(code), `registered code: ${String(code)}`);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    assert.equal(codes.get('TS_ERR_INTERNAL'), undefined, 'no unexpected failure');
    for (const c of [
      'TS_ERR_FRAME_TRUNCATED',
      'TS_ERR_FRAME_VERSION',
      'TS_ERR_FRAME_TYPE',
      'TS_ERR_FRAME_MALFORMED',
      'TS_ERR_NOT_LEASED',
      'TS_ERR_INVALID_ARGUMENT',
    ])
      assert.ok(codes.has(c), `${c} seen (${JSON.stringify(Object.fromEntries(codes))})`);
    assert.equal(progressed, N / 20);
    const mine = kit.sched.status().workers.find((w) => w.worker === good.worker)!;
    assert.equal(mine.tasksDone, N / 20, 'the other session progressed throughout');
    // The fuzzed session still works.
    assert.equal(await codeOf(fuzz.call((id) => encodeSchedHello(id, {}))), 'TS_ERR_INVALID_ARGUMENT');
    assert.ok('task' in parseTask(await fuzz.call((id) => encodeLease(id))));
    good.close();
    fuzz.conn.close();
  });
});
