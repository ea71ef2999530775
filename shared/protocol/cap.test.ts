import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng, randomSortedKeys } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { asKeySet, encodeCap, encodeKeySet, MAX_CAP_CHARS, parseCap } from './cap.ts';
import { decodeFrame, emptyFrame, encodeFrame, Flag, type Frame, MsgType } from './frame.ts';

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
const dec = (f: Frame) => decodeFrame(concatParts(encodeFrame(f)));
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('CAP and KEYSET frames', () => {
  it('encodes CAP and KEYSET byte for byte as PROTOCOL.md §6.2 documents them (fixtures)', () => {
    assert.equal(
      hex(concatParts(encodeCap(3, 1, 'abc.def'))),
      '010d0000030000000100000000000000000000000002000000000000110000007b22636170223a226162632e646566227d',
    );
    assert.equal(
      hex(concatParts(encodeKeySet(4, 1, 2, 7, Float64Array.of(5, 9, 12)))),
      '01170000040000000100000002000000000000000302000003000000040000000500000000000000040000000300000007000000',
    );
    assert.equal(
      hex(concatParts(encodeKeySet(5, 1, 2, 8, [{ begin: 10, end: 20 }]))),
      '01170000050000000100000002000000000000000102000000000000040000000a00000000000000140000000000000008000000',
    );
  });

  it('round-trips CAP tokens and seeded random key sets (lists, a range, ranges)', () => {
    const f = decodeFrame(concatParts(encodeCap(9, 77, 'x'.repeat(MAX_CAP_CHARS))));
    assert.equal(f.type, MsgType.CAP);
    assert.equal(f.job, 77);
    assert.equal(parseCap(f), 'x'.repeat(MAX_CAP_CHARS));
    const rng = createRng(5);
    for (let i = 0; i < 300; i++) {
      const m = { requestId: rng.int(2 ** 32), job: rng.int(2 ** 32), table: rng.int(2 ** 32), id: rng.int(2 ** 32) };
      const pick = rng.int(3);
      if (pick === 0) {
        const keys = randomSortedKeys(rng, rng.int(200), 2 ** 52);
        const got = asKeySet(decodeFrame(concatParts(encodeKeySet(m.requestId, m.job, m.table, m.id, keys))));
        assert.deepEqual(got, { ...m, keys: { kind: 'list', keys } });
      } else {
        const n = pick === 1 ? 1 : 2 + rng.int(5);
        const ranges: { begin: number; end: number }[] = [];
        let at = rng.int(100);
        for (let j = 0; j < n; j++) {
          at += rng.int(3) === 0 ? 0 : rng.int(1000);
          const begin = at;
          at += 1 + rng.int(1000);
          ranges.push({ begin, end: at });
        }
        const got = asKeySet(decodeFrame(concatParts(encodeKeySet(m.requestId, m.job, m.table, m.id, ranges))));
        const want =
          n === 1
            ? { kind: 'range', begin: ranges[0].begin, end: ranges[0].end }
            : { kind: 'ranges', bounds: Float64Array.from(ranges.flatMap((r) => [r.begin, r.end])) };
        assert.deepEqual(got, { ...m, keys: want });
      }
    }
  });

  it('refuses CAP bodies out of shape with TS_ERR_FRAME_MALFORMED', () => {
    for (const body of [
      '{}',
      '{"cap":3}',
      '{"cap":null}',
      `{"cap":"${'y'.repeat(MAX_CAP_CHARS + 1)}"}`,
      '[]',
      '"t"',
      'x',
    ])
      assert.equal(
        codeOf(() => parseCap(dec({ ...emptyFrame(MsgType.CAP, 1), body: utf8(body) }))),
        'TS_ERR_FRAME_MALFORMED',
        body.slice(0, 20),
      );
    assert.equal(
      codeOf(() => parseCap(dec(emptyFrame(MsgType.CAP, 1)))),
      'TS_ERR_FRAME_MALFORMED',
      'no body',
    );
  });

  it('refuses KEYSET frames out of shape with TS_ERR_FRAME_MALFORMED', () => {
    const base = emptyFrame(MsgType.KEYSET, 1);
    const id = Uint8Array.of(1, 0, 0, 0);
    const list = { kind: 'list', keys: Float64Array.of(1, 2) } as const;
    const bad: Array<[string, Frame]> = [
      ['no keys', { ...base, body: id }],
      ['no id', { ...base, keys: list }],
      ['a 3-byte id', { ...base, keys: list, body: id.subarray(0, 3) }],
      ['a 5-byte id', { ...base, keys: list, body: Uint8Array.of(1, 0, 0, 0, 0) }],
      ['float values', { ...base, keys: list, values: Float32Array.of(1) }],
      ['a task block', { ...base, keys: list, body: id, task: { worker: 1, task: 2, attempt: 0, seq: 0 } }],
      ['cached keys', { ...base, keys: { kind: 'cached', hash: 5n, n: 2 }, body: id }],
      ['CACHE_KEYS', { ...base, flags: Flag.CACHE_KEYS, keys: list, body: id }],
    ];
    for (const [why, f] of bad)
      assert.equal(
        codeOf(() => asKeySet(dec(f))),
        'TS_ERR_FRAME_MALFORMED',
        why,
      );
    assert.equal(
      codeOf(() => asKeySet(dec({ ...base, keys: list, body: id }))),
      'ok',
    );
    assert.equal(
      codeOf(() => encodeKeySet(1, 0, 0, -1, list.keys)),
      'TS_ERR_INVALID_ARGUMENT',
    );
    assert.equal(
      codeOf(() => encodeKeySet(1, 0, 0, 1, Float64Array.of(2, 1))),
      'TS_ERR_KEYS_UNSORTED',
    );
    assert.equal(
      codeOf(() =>
        encodeKeySet(1, 0, 0, 1, [
          { begin: 5, end: 9 },
          { begin: 8, end: 10 },
        ]),
      ),
      'TS_ERR_INVALID_ARGUMENT',
    );
    assert.equal(
      codeOf(() => encodeKeySet(1, 0, 0, 1, [{ begin: 5, end: 5 }])),
      'TS_ERR_INVALID_ARGUMENT',
    );
  });
});
