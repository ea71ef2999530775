import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { checkSortedKeys } from '../keys.ts';
import { BufferPool } from '../pool.ts';
import { createRng, randomSortedKeys } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { decodeError, encodeError } from './control.ts';
import { decodeFrame, emptyFrame, encodeFrame, Flag, type Frame, MsgType } from './frame.ts';
import { asPush, encodePush } from './kv.ts';

const bytes = (f: Frame) => concatParts(encodeFrame(f));

/** 'ok' if the bytes decode, else the TabshardError's code. */
function code(m: Uint8Array): string {
  try {
    decodeFrame(m);
    return 'ok';
  } catch (e) {
    return (e as TabshardError).code;
  }
}

/** `n` sorted, non-empty, non-overlapping ranges below 2^52 as begin/end pairs (some adjacent). */
function randomRanges(rng: ReturnType<typeof createRng>, n: number): Float64Array {
  const b = new Float64Array(2 * n);
  let at = rng.int(1000);
  for (let i = 0; i < n; i++) {
    at += rng.next() < 0.2 ? 0 : rng.int(2 ** 20);
    b[2 * i] = at;
    at += 1 + rng.int(1000);
    b[2 * i + 1] = at;
  }
  return b;
}
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

describe('frame codec', () => {
  it('encodes a push byte for byte as PROTOCOL.md documents it (fixture)', () => {
    const msg = concatParts(
      encodePush({
        requestId: 7,
        job: 1,
        table: 2,
        clock: 3,
        task: { worker: 4, task: 5, attempt: 6, seq: 7 },
        keys: { kind: 'list', keys: Float64Array.of(1, 2 ** 32) },
        values: Float32Array.of(1, -2),
      }),
    );
    assert.equal(
      hex(msg),
      [
        '01',
        '10',
        '0100',
        '07000000',
        '01000000',
        '02000000',
        '03000000', // version type flags req job table clock
        '03',
        '01',
        '0000',
        '02000000',
        '08000000', // key kind DELTA32, value kind F32, reserved, n=2, 8 value bytes
        '04000000',
        '05000000',
        '06000000',
        '07000000', // task block
        '0100000000000000',
        'ffffffff', // first key 1, delta 2^32 - 1
        '0000803f',
        '000000c0', // 1.0f, -2.0f
      ].join(''),
    );
  });

  it('uses LIST64 when a gap does not fit in 32 bits', () => {
    const msg = bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'list', keys: Float64Array.of(0, 2 ** 40) } });
    assert.equal(msg[20], 2);
    assert.equal(msg.byteLength, 32 + 16);
  });

  it('round-trips seeded random frames of every shape', () => {
    const rng = createRng(42);
    const types = Object.values(MsgType);
    for (let i = 0; i < 2000; i++) {
      const kind = rng.int(4);
      const n = rng.int(50);
      const keys =
        kind === 0
          ? ({ kind: 'none' } as const)
          : kind === 1
            ? ({ kind: 'range', begin: 5, end: 5 + rng.int(1000) } as const)
            : kind === 2
              ? ({ kind: 'list', keys: randomSortedKeys(rng, n, rng.next() < 0.5 ? 2 ** 52 : 1000) } as const)
              : ({ kind: 'ranges', bounds: randomRanges(rng, rng.int(6)) } as const);
      const f: Frame = {
        type: types[rng.int(types.length)],
        flags: rng.int(2) << 1,
        requestId: rng.int(2 ** 32),
        job: rng.int(2 ** 32),
        table: rng.int(2 ** 32),
        clock: rng.int(2 ** 31) - 2 ** 30,
        task:
          rng.next() < 0.5
            ? { worker: rng.int(2 ** 32), task: rng.int(2 ** 32), attempt: rng.int(9), seq: rng.int(99) }
            : null,
        keys,
        values: rng.next() < 0.5 ? Float32Array.from({ length: rng.int(40) }, () => rng.next() - 0.5) : null,
        body: null,
      };
      if (!f.values && rng.next() < 0.5) f.body = Uint8Array.from({ length: rng.int(30) }, () => rng.int(256));
      const got = decodeFrame(bytes(f));
      const want = { ...f, flags: f.task ? f.flags | 1 : f.flags };
      if (want.values?.length === 0) want.values = got.values; // an empty segment decodes as empty either way
      if (want.body?.length === 0) want.body = got.body;
      assert.deepEqual(
        { ...got, body: got.body && Array.from(got.body) },
        { ...want, body: want.body && Array.from(want.body) },
      );
    }
  });

  it('encodes several ranges (RANGES, key kind 5) byte for byte as PROTOCOL.md documents it (fixture)', () => {
    const msg = bytes({
      ...emptyFrame(MsgType.PULL, 1),
      keys: { kind: 'ranges', bounds: Float64Array.of(2, 4, 2 ** 32, 2 ** 32 + 1) },
    });
    assert.equal(
      hex(msg),
      [
        '01',
        '11',
        '0000',
        '01000000',
        '00000000',
        '00000000',
        '00000000', // version, PULL, flags, request 1, job, table, clock
        '05',
        '00',
        '0000',
        '02000000',
        '00000000', // key kind RANGES, no values, reserved, n = 2 ranges, 0 value bytes
        '0200000000000000',
        '0400000000000000', // [2, 4)
        '0000000001000000',
        '0100000001000000', // [2^32, 2^32 + 1)
      ].join(''),
    );
    assert.deepEqual(decodeFrame(msg).keys, { kind: 'ranges', bounds: Float64Array.of(2, 4, 2 ** 32, 2 ** 32 + 1) });
  });

  it('encodes a cached key list (CACHED, key kind 4) by its hash and count, and CACHE_KEYS only on a key list', () => {
    const msg = bytes({ ...emptyFrame(MsgType.PULL, 1), keys: { kind: 'cached', hash: 0x0123456789abcdefn, n: 70 } });
    assert.equal(hex(msg.subarray(20, 32)), '04000000' + '46000000' + '00000000');
    assert.equal(hex(msg.subarray(32)), 'efcdab8967452301');
    assert.deepEqual(decodeFrame(msg).keys, { kind: 'cached', hash: 0x0123456789abcdefn, n: 70 });
    const flagged = (keys: Frame['keys']) => bytes({ ...emptyFrame(MsgType.PULL), flags: Flag.CACHE_KEYS, keys });
    assert.equal(decodeFrame(flagged({ kind: 'list', keys: Float64Array.of(1, 2) })).flags, Flag.CACHE_KEYS);
    assert.throws(() => decodeFrame(flagged({ kind: 'range', begin: 0, end: 2 })), { code: 'TS_ERR_FRAME_MALFORMED' });
    assert.throws(() => decodeFrame(flagged({ kind: 'cached', hash: 1n, n: 2 })), { code: 'TS_ERR_FRAME_MALFORMED' });
  });

  it('refuses RANGES that are empty, reversed, overlapping or beyond 2^52, each with its code', () => {
    const msg = (...b: number[]) =>
      bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'ranges', bounds: Float64Array.from(b) } });
    assert.equal(code(msg(0, 5, 5, 9)), 'ok'); // adjacent ranges are allowed
    assert.equal(code(msg()), 'ok'); // no ranges at all
    assert.equal(code(msg(3, 3)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(msg(4, 3)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(msg(0, 5, 4, 9)), 'TS_ERR_KEYS_UNSORTED');
    assert.equal(code(msg(7, 9, 0, 2)), 'TS_ERR_KEYS_UNSORTED');
    assert.equal(code(msg(2 ** 52 - 1, 2 ** 52)), 'ok');
    const far = msg(0, 1);
    new DataView(far.buffer).setUint32(32 + 12, 1 << 20, true); // end's high word: 2^52 + 1
    new DataView(far.buffer).setUint32(32 + 8, 1, true);
    assert.equal(code(far), 'TS_ERR_KEY_OUT_OF_RANGE');
    const short = msg(0, 1, 2, 3).subarray(0, 32 + 24);
    assert.equal(code(short), 'TS_ERR_FRAME_TRUNCATED');
  });

  it('accepts a range ending at 2^52 (the largest key space) and refuses one beyond it', () => {
    const msg = bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'range', begin: 2 ** 52 - 2, end: 2 ** 52 } });
    assert.deepEqual(decodeFrame(msg).keys, { kind: 'range', begin: 2 ** 52 - 2, end: 2 ** 52 });
    new DataView(msg.buffer).setUint32(32 + 8, 1, true); // end = 2^52 + 1
    assert.throws(() => decodeFrame(msg), { code: 'TS_ERR_KEY_OUT_OF_RANGE' });
  });

  it('decodes values at an unaligned offset by copying them', () => {
    const msg = bytes({ ...emptyFrame(MsgType.PULL_REPLY), values: Float32Array.of(1.5, 2.5) });
    const shifted = new Uint8Array(msg.byteLength + 1).subarray(1);
    shifted.set(msg);
    assert.deepEqual(Array.from(decodeFrame(shifted).values!), [1.5, 2.5]);
  });

  it('refuses a frame that claims a huge key list before allocating it', () => {
    const msg = bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'list', keys: Float64Array.of(1) } });
    new DataView(msg.buffer).setUint32(24, 0xffffffff, true);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => decodeFrame(msg), { code: 'TS_ERR_FRAME_TRUNCATED' });
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
  });

  it('gives each kind of damage its own code', () => {
    const good = bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'list', keys: Float64Array.of(1, 2, 3) } });
    const damaged = (at: number, v: number) => {
      const m = good.slice();
      m[at] = v;
      return m;
    };
    assert.equal(code(good.subarray(0, 10)), 'TS_ERR_FRAME_TRUNCATED');
    assert.equal(code(damaged(0, 9)), 'TS_ERR_FRAME_VERSION');
    assert.equal(code(damaged(1, 0x7f)), 'TS_ERR_FRAME_TYPE');
    assert.equal(code(damaged(3, 0x80)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(concatParts([good, Uint8Array.of(0)])), 'TS_ERR_FRAME_MALFORMED');
    const dup = good.slice();
    new DataView(dup.buffer).setUint32(32 + 8, 0, true); // DELTA32 delta of 0: a duplicate key
    assert.equal(code(dup), 'TS_ERR_KEYS_UNSORTED');
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(36, 1 << 21, true); // first key's high word above 2^52
    assert.equal(code(huge), 'TS_ERR_KEY_OUT_OF_RANGE');
  });

  it('round-trips an error reply with its stable code', () => {
    const err = decodeError(
      decodeFrame(concatParts(encodeError(9, new TabshardError('TS_ERR_UNKNOWN_TABLE', 'table 3')))),
    );
    assert.equal(err.code, 'TS_ERR_UNKNOWN_TABLE');
    assert.match(err.message, /table 3/);
  });

  it('ends every one of 100,000 random and mutated frames in a frame or a TabshardError', () => {
    const rng = createRng(2024);
    const seeds = [
      bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'list', keys: Float64Array.of(1, 5, 2 ** 45) } }),
      concatParts(
        encodePush({
          requestId: 1,
          job: 0,
          table: 0,
          clock: 0,
          task: { worker: 1, task: 2, attempt: 0, seq: 0 },
          keys: { kind: 'range', begin: 0, end: 4 },
          values: new Float32Array(4),
        }),
      ),
      concatParts(encodeError(3, new TabshardError('TS_ERR_TIMEOUT'))),
      bytes({ ...emptyFrame(MsgType.PULL), keys: { kind: 'ranges', bounds: Float64Array.of(1, 9, 20, 2 ** 40) } }),
    ];
    let decoded = 0;
    for (let i = 0; i < 100_000; i++) {
      let m: Uint8Array;
      if (i % 4 === 0) {
        m = Uint8Array.from({ length: rng.int(96) }, () => rng.int(256));
        if (m.length > 0 && rng.next() < 0.5) m[0] = 1;
      } else {
        m = seeds[i % seeds.length].slice();
        for (let k = 1 + rng.int(4); k > 0; k--) m[rng.int(m.length)] = rng.int(256);
        if (rng.next() < 0.2) m = m.subarray(0, rng.int(m.length + 1));
      }
      try {
        const f = decodeFrame(m);
        decoded++;
        if (f.keys.kind === 'list')
          for (let k = 1; k < f.keys.keys.length; k++) assert.ok(f.keys.keys[k] > f.keys.keys[k - 1]);
        if (f.keys.kind === 'ranges')
          for (let k = 0; k < f.keys.bounds.length; k++)
            assert.ok(
              f.keys.bounds[k] > f.keys.bounds[k - 1] ||
                (k % 2 === 0 && f.keys.bounds[k] >= (f.keys.bounds[k - 1] ?? 0)),
            );
        if (f.type === MsgType.PUSH && f.values) asPush(f);
      } catch (e) {
        if (!(e instanceof TabshardError)) throw e;
      }
    }
    assert.ok(decoded > 1000, `some mutations stay valid (${decoded})`);
  });

  it('checks keys while encoding exactly as checkSortedKeys does (same code), and encodes good lists the same', () => {
    const rng = createRng(7);
    const K = 2 ** 40;
    const codeOf = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return e instanceof TabshardError ? e.code : String(e);
      }
    };
    const pool = new BufferPool(64);
    for (let i = 0; i < 3000; i++) {
      const keys = randomSortedKeys(rng, 1 + rng.int(40), rng.next() < 0.3 ? 2 ** 52 : K);
      const bad = rng.int(6);
      const at = rng.int(keys.length);
      if (bad === 1) keys[at] = Number.NaN;
      else if (bad === 2) keys[at] = keys[at] + 0.5;
      else if (bad === 3 && at > 0) keys[at] = keys[at - 1];
      else if (bad === 4) keys[at] = -1;
      else if (bad === 5 && at > 0) [keys[at - 1], keys[at]] = [keys[at], keys[at - 1]];
      const f: Frame = { ...emptyFrame(MsgType.PULL, 9), keys: { kind: 'list', keys } };
      const want = codeOf(() => checkSortedKeys(keys, K));
      assert.equal(
        codeOf(() => encodeFrame(f, undefined, { keySpace: K, pool })),
        want,
        `case ${i}`,
      );
      if (want === 'ok')
        assert.deepEqual(concatParts(encodeFrame(f, undefined, { keySpace: K, pool })), bytes(f), `case ${i}`);
    }
  });
});
