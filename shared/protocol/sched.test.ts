import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng, type Rng } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { encodeJson } from './control.ts';
import { decodeFrame, type Frame, MsgType } from './frame.ts';
import {
  encodeHeartbeat,
  encodeLease,
  encodeSchedHello,
  encodeTask,
  encodeTaskDone,
  encodeWelcome,
  parseHeartbeat,
  parseLease,
  parseSchedHello,
  parseTask,
  parseTaskDone,
  parseWelcome,
  type TaskReply,
} from './sched.ts';

const frame = (parts: Uint8Array[]): Frame => decodeFrame(concatParts(parts));
const u32 = (r: Rng) => (r.next() < 0.1 ? 0xffffffff : r.int(2 ** 32));
const body = (f: Frame) => new TextDecoder().decode(f.body!);
const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof TabshardError, String(e));
    return e.code;
  }
};

describe('scheduler session bodies', () => {
  it('round-trips seeded random bodies of every message', () => {
    const r = createRng(42);
    for (let i = 0; i < 500; i++) {
      const id = u32(r);
      const hello = { worker: u32(r), agent: 'a'.repeat(r.int(201)), transport: ['ws', 'webrtc', 'tcp'][r.int(3)] };
      assert.deepEqual(parseSchedHello(frame(encodeSchedHello(id, hello))), hello);
      assert.deepEqual(parseSchedHello(frame(encodeSchedHello(id, {}))), {});
      const w = {
        worker: u32(r),
        job: u32(r),
        shards: 1 + r.int(1000),
        iterations: 1 + r.int(1000),
        leaseMs: 1 + r.int(60_000),
        heartbeatMs: 1 + r.int(10_000),
        app: `app${r.int(10)}`,
        ...(r.next() < 0.5 ? { read: `r.${'x'.repeat(r.int(2000))}` } : {}),
      };
      const wf = frame(encodeWelcome(id, w));
      assert.equal(wf.requestId, id);
      assert.equal(wf.job, w.job);
      assert.deepEqual(parseWelcome(wf), w);
      parseLease(frame(encodeLease(id, w.job)));
      const replies: TaskReply[] = [
        {
          task: 1 + r.int(2 ** 32 - 1),
          attempt: u32(r),
          shard: u32(r),
          iteration: u32(r),
          leaseMs: 1 + r.int(1e6),
          clock: u32(r),
          tau: r.int(2) ? null : u32(r),
          ...(r.int(2) ? { eager: true as const } : {}),
          ...(r.int(2) ? { stalenessLr: true as const } : {}),
          ...(r.int(2) ? { traffic: { push: r.int(2) ? ('q8' as const) : ('f16' as const), compress: true } } : {}),
          ...(r.int(2)
            ? {
                traffic: {
                  pullHalf: true,
                  ...(r.int(2) ? { threshold: r.int(100) / 8 + 0.125, thresholdRms: 0.5 } : {}),
                },
              }
            : {}),
          ...(r.int(2) ? { cap: `c.${r.int(1e9)}` } : {}),
          ...(r.int(2) ? { read: `r.${r.int(1e9)}` } : {}),
        },
        { wait: r.int(600_001) },
        { done: true },
      ];
      for (const t of replies) assert.deepEqual(parseTask(frame(encodeTask(id, t))), t);
      const ref = { task: 1 + r.int(2 ** 32 - 1), attempt: u32(r) };
      assert.deepEqual(parseHeartbeat(frame(encodeHeartbeat(id, ref))), ref);
      const rep = { ...ref, examples: r.int(1e6), computeMs: r.next() * 1e4, waitMs: r.next() * 1e4 };
      assert.deepEqual(parseTaskDone(frame(encodeTaskDone(id, rep))), rep);
      const withLoss = { ...rep, loss: r.next() - 0.5 };
      assert.deepEqual(parseTaskDone(frame(encodeTaskDone(id, withLoss))), withLoss);
    }
  });

  it('writes the bodies PROTOCOL.md shows (fixture)', () => {
    assert.equal(
      body(frame(encodeTask(1, { task: 7, attempt: 1, shard: 2, iteration: 1, leaseMs: 10000, clock: 1, tau: 0 }))),
      '{"task":7,"attempt":1,"shard":2,"iteration":1,"leaseMs":10000,"clock":1,"tau":0}',
    );
    assert.equal(body(frame(encodeSchedHello(1, { agent: 'node/20' }))), '{"role":"worker","agent":"node/20"}');
    assert.equal(
      body(frame(encodeTaskDone(1, { task: 7, attempt: 1, examples: 512, computeMs: 84, waitMs: 3 }))),
      '{"task":7,"attempt":1,"examples":512,"computeMs":84,"waitMs":3}',
    );
  });

  it('refuses bodies out of shape with TS_ERR_FRAME_MALFORMED', () => {
    const f = (type: MsgType, o: unknown) => frame(encodeJson(type, 1, o));
    const cases: Array<[string, () => unknown]> = [
      ['hello role', () => parseSchedHello(f(MsgType.HELLO, { role: 'admin' }))],
      ['hello no role', () => parseSchedHello(f(MsgType.HELLO, {}))],
      ['hello worker', () => parseSchedHello(f(MsgType.HELLO, { role: 'worker', worker: -1 }))],
      ['hello agent', () => parseSchedHello(f(MsgType.HELLO, { role: 'worker', agent: 'x'.repeat(201) }))],
      ['hello transport', () => parseSchedHello(f(MsgType.HELLO, { role: 'worker', transport: 3 }))],
      ['welcome shards 0', () => parseWelcome(f(MsgType.HELLO, { worker: 1, job: 0, shards: 0 }))],
      ['welcome from a node', () => parseWelcome(f(MsgType.HELLO, { node: 'n1', protocol: 1, ring: 0 }))],
      ['lease array', () => parseLease(f(MsgType.LEASE, []))],
      ['task two kinds', () => parseTask(f(MsgType.TASK, { wait: 1, done: true }))],
      ['task none', () => parseTask(f(MsgType.TASK, {}))],
      ['task done false', () => parseTask(f(MsgType.TASK, { done: false }))],
      ['task wait huge', () => parseTask(f(MsgType.TASK, { wait: 600_001 }))],
      ['task 0', () => parseTask(f(MsgType.TASK, { task: 0, attempt: 0, shard: 0, iteration: 0, leaseMs: 1 }))],
      ['task no lease', () => parseTask(f(MsgType.TASK, { task: 1, attempt: 0, shard: 0, iteration: 0 }))],
      ['task no clock', () => parseTask(f(MsgType.TASK, { task: 1, attempt: 0, shard: 0, iteration: 0, leaseMs: 1 }))],
      [
        'task cap empty',
        () =>
          parseTask(
            f(MsgType.TASK, { task: 1, attempt: 0, shard: 0, iteration: 0, leaseMs: 1, clock: 0, tau: 0, cap: '' }),
          ),
      ],
      [
        'task cap too long',
        () =>
          parseTask(
            f(MsgType.TASK, {
              task: 1,
              attempt: 0,
              shard: 0,
              iteration: 0,
              leaseMs: 1,
              clock: 0,
              tau: 0,
              cap: 'x'.repeat(2049),
            }),
          ),
      ],
      [
        'welcome read not a string',
        () =>
          parseWelcome(
            f(MsgType.HELLO, {
              worker: 1,
              job: 0,
              shards: 1,
              iterations: 1,
              leaseMs: 2,
              heartbeatMs: 1,
              app: 'a',
              read: 5,
            }),
          ),
      ],
      [
        'task eager not boolean',
        () =>
          parseTask(
            f(MsgType.TASK, { task: 1, attempt: 0, shard: 0, iteration: 0, leaseMs: 1, clock: 0, tau: 0, eager: 1 }),
          ),
      ],
      ...[{ push: 'f8' }, { pullHalf: 'yes' }, { zip: true }, 'q8', { threshold: -0.5 }, { threshold: 'big' }].map(
        (traffic) =>
          [
            `task traffic ${JSON.stringify(traffic)}`,
            () =>
              parseTask(
                f(MsgType.TASK, { task: 1, attempt: 0, shard: 0, iteration: 0, leaseMs: 1, clock: 0, tau: 0, traffic }),
              ),
          ] as [string, () => unknown],
      ),
      ['heartbeat float', () => parseHeartbeat(f(MsgType.HEARTBEAT, { task: 1.5, attempt: 0 }))],
      ['heartbeat string', () => parseHeartbeat(f(MsgType.HEARTBEAT, { task: '1', attempt: 0 }))],
      ['heartbeat big', () => parseHeartbeat(f(MsgType.HEARTBEAT, { task: 1, attempt: 2 ** 32 }))],
      ['done NaN-ish', () => parseTaskDone(f(MsgType.TASK_DONE, { task: 1, attempt: 0, examples: 1 }))],
      [
        'done negative',
        () => parseTaskDone(f(MsgType.TASK_DONE, { task: 1, attempt: 0, examples: 1, computeMs: -1, waitMs: 0 })),
      ],
      [
        'done examples float',
        () => parseTaskDone(f(MsgType.TASK_DONE, { task: 1, attempt: 0, examples: 1.5, computeMs: 0, waitMs: 0 })),
      ],
      [
        'done loss',
        () =>
          parseTaskDone(f(MsgType.TASK_DONE, { task: 1, attempt: 0, examples: 1, computeMs: 0, waitMs: 0, loss: 'x' })),
      ],
      ['wrong type', () => parseTask(f(MsgType.HELLO, { done: true }))],
      ['not json', () => parseHeartbeat({ ...f(MsgType.HEARTBEAT, {}), body: Uint8Array.of(0x7b) })],
      ['no body', () => parseLease({ ...f(MsgType.LEASE, {}), body: null })],
    ];
    for (const [name, fn] of cases) assert.equal(code(fn), 'TS_ERR_FRAME_MALFORMED', name);
  });
});
