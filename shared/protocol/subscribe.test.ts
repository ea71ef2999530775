import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng, randomSortedKeys } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { decodeFrame, emptyFrame, encodeFrame, MsgType } from './frame.ts';
import {
  asPublish,
  asSubscribe,
  asUnsubscribe,
  encodeClock,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  parseClock,
} from './subscribe.ts';

const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof TabshardError)) throw e;
    return e.code;
  }
};

describe('eager SSP frames', () => {
  it('encodes SUBSCRIBE, UNSUBSCRIBE and PUBLISH byte for byte as PROTOCOL.md §5.1 documents them (fixtures)', () => {
    const sub = concatParts(
      encodeSubscribe({ requestId: 5, job: 1, table: 2, subscription: 9, keys: { kind: 'range', begin: 4, end: 6 } }),
    );
    assert.equal(
      hex(sub),
      '01140000050000000100000002000000000000000102000000000000040000000400000000000000060000000000000009000000',
    );
    const unsub = concatParts(encodeUnsubscribe({ requestId: 6, job: 1, table: 2, subscription: 9 }));
    assert.equal(hex(unsub), '011500000600000001000000020000000000000000020000000000000400000009000000');
    const pub = concatParts(encodePublish({ job: 1, table: 2, subscription: 9, clock: 3 }, [Float32Array.of(1, -2)]));
    assert.equal(hex(pub), '01160000090000000100000002000000030000000001000000000000080000000000803f000000c0');
  });

  it('a publication of what changed (flag CHANGED): fixture, round trip, and where the flag may not go', () => {
    // id 9, job 1, table 2, clock 4, positions [1] (DELTA32: the first key as 8 bytes), values [0.5]
    const pub = concatParts(
      encodePublish({ job: 1, table: 2, subscription: 9, clock: 4, positions: Float64Array.of(1) }, [
        Float32Array.of(0.5),
      ]),
    );
    assert.equal(
      hex(pub),
      '01160001090000000100000002000000040000000301000001000000040000000100000000000000' + '0000003f',
    );
    const got = asPublish(decodeFrame(pub));
    assert.deepEqual(Array.from(got.positions!), [1]);
    assert.deepEqual(Array.from(got.values), [0.5]);
    const sub = asSubscribe(
      decodeFrame(
        concatParts(
          encodeSubscribe({
            requestId: 5,
            job: 1,
            table: 2,
            subscription: 9,
            keys: { kind: 'range', begin: 4, end: 6 },
            changed: true,
          }),
        ),
      ),
    );
    assert.equal(sub.changed, true);
    const list = { kind: 'list', keys: Float64Array.of(1, 2) } as const;
    const enc = (f: ReturnType<typeof emptyFrame>) => concatParts(encodeFrame(f));
    assert.equal(
      codeOf(() => decodeFrame(enc({ ...emptyFrame(MsgType.PULL, 1), flags: 1 << 8, keys: list }))),
      'TS_ERR_FRAME_MALFORMED',
      'CHANGED on a PULL',
    );
    const publish = { ...emptyFrame(MsgType.PUBLISH, 9), values: Float32Array.of(1, 2) };
    assert.equal(
      codeOf(() => asPublish(decodeFrame(enc({ ...publish, flags: 1 << 8 })))),
      'TS_ERR_FRAME_MALFORMED',
      'CHANGED without positions',
    );
    assert.equal(
      codeOf(() => asPublish(decodeFrame(enc({ ...publish, keys: list })))),
      'TS_ERR_FRAME_MALFORMED',
      'positions without CHANGED',
    );
    assert.equal(
      codeOf(() => asPublish(decodeFrame(enc({ ...publish, flags: 1 << 8, keys: list })))),
      'ok',
    );
  });

  it('round-trips seeded random messages', () => {
    const rng = createRng(77);
    for (let i = 0; i < 500; i++) {
      const keys =
        rng.next() < 0.5
          ? ({ kind: 'range', begin: rng.int(1000), end: 1000 + rng.int(1000) } as const)
          : ({ kind: 'list', keys: randomSortedKeys(rng, rng.int(100), 2 ** 52) } as const);
      const m = {
        requestId: rng.int(2 ** 32),
        job: rng.int(2 ** 32),
        table: rng.int(2 ** 32),
        subscription: rng.int(2 ** 32),
      };
      assert.deepEqual(asSubscribe(decodeFrame(concatParts(encodeSubscribe({ ...m, keys })))), { ...m, keys });
      assert.deepEqual(asUnsubscribe(decodeFrame(concatParts(encodeUnsubscribe(m)))), m);
      const values = Float32Array.from({ length: rng.int(20) }, () => rng.next());
      const p = { job: m.job, table: m.table, subscription: m.subscription, clock: rng.int(2 ** 31) };
      const got = asPublish(decodeFrame(concatParts(encodePublish(p, [values.subarray(0, 3), values.subarray(3)]))));
      assert.deepEqual({ ...got, values: Array.from(got.values) }, { ...p, values: Array.from(values) });
      const clock = rng.int(2 ** 31);
      const f = decodeFrame(concatParts(encodeClock(m.requestId, m.job, clock)));
      assert.equal(f.type, MsgType.CLOCK);
      assert.equal(f.job, m.job);
      assert.equal(parseClock(f), clock);
    }
  });

  it('refuses frames of the wrong shape with TS_ERR_FRAME_MALFORMED', () => {
    const base = emptyFrame(MsgType.SUBSCRIBE, 1);
    const id = Uint8Array.of(1, 0, 0, 0);
    const list = { kind: 'list', keys: Float64Array.of(1, 2) } as const;
    const dec = (f: typeof base) => decodeFrame(concatParts(encodeFrame(f)));
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, body: id }))),
      'TS_ERR_FRAME_MALFORMED',
      'no keys',
    );
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, keys: list }))),
      'TS_ERR_FRAME_MALFORMED',
      'no id',
    );
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, keys: list, body: id.subarray(0, 3) }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, keys: list, values: Float32Array.of(1) }))),
      'TS_ERR_FRAME_MALFORMED',
      'float values instead of the id',
    );
    const task = { worker: 1, task: 2, attempt: 0, seq: 0 };
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, keys: list, body: id, task }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      codeOf(() => asSubscribe(dec({ ...base, keys: list, body: id }))),
      'ok',
    );
    const un = emptyFrame(MsgType.UNSUBSCRIBE, 1);
    assert.equal(
      codeOf(() => asUnsubscribe(dec({ ...un, body: id, keys: list }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      codeOf(() => asUnsubscribe(dec(un))),
      'TS_ERR_FRAME_MALFORMED',
    );
    const pub = emptyFrame(MsgType.PUBLISH, 1);
    assert.equal(
      codeOf(() => asPublish(dec({ ...pub, keys: list, values: Float32Array.of(1) }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      codeOf(() => asPublish(dec({ ...pub, clock: -1, values: Float32Array.of(1) }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(
      codeOf(() => asPublish(dec({ ...pub, body: id }))),
      'TS_ERR_FRAME_MALFORMED',
    );
    for (const body of ['{}', '{"clock":-1}', '{"clock":1.5}', '{"clock":2147483648}', '[]', 'x'])
      assert.equal(
        codeOf(() => parseClock(dec({ ...emptyFrame(MsgType.CLOCK), body: new TextEncoder().encode(body) }))),
        'TS_ERR_FRAME_MALFORMED',
        body,
      );
    assert.equal(
      codeOf(() => encodeClock(1, 0, -1)),
      'TS_ERR_INVALID_ARGUMENT',
    );
  });
});
