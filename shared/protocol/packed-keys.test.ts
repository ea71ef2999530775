/** Deflated key lists (key kind DEFLATED, PROTOCOL.md §3.3.1): fixture, round trips, refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng, randomSortedKeys } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { fflateCodec, useDeflateCodec } from './deflate.ts';
import { decodeFrame, emptyFrame, encodeFrame, Flag, KeyKind, MsgType } from './frame.ts';
import { code } from './values-testkit.ts';

const fromHex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

/** A PULL header (job 1, table 2) with key kind `kind`, `n` keys, and `seg` as its key segment. */
function pullWith(kind: number, n: number, seg: Uint8Array, flags = 0): Uint8Array {
  const m = new Uint8Array(32 + seg.byteLength);
  const dv = new DataView(m.buffer);
  dv.setUint8(0, 1);
  dv.setUint8(1, MsgType.PULL);
  dv.setUint16(2, flags, true);
  dv.setUint32(8, 1, true);
  dv.setUint32(12, 2, true);
  dv.setUint8(20, kind);
  dv.setUint32(24, n, true);
  m.set(seg, 32);
  return m;
}

/** A DEFLATED segment: head fields as given, then `data` padded to a multiple of 4 with `pad`. */
function segment(inner: number, codec: number, reserved: number, data: Uint8Array, pad = 0): Uint8Array {
  const padded = (data.byteLength + 3) & ~3;
  const seg = new Uint8Array(8 + padded).fill(pad, 8 + data.byteLength);
  const dv = new DataView(seg.buffer);
  dv.setUint8(0, inner);
  dv.setUint8(1, codec);
  dv.setUint16(2, reserved, true);
  dv.setUint32(4, data.byteLength, true);
  seg.set(data, 8);
  return seg;
}

/** A stored deflate block holding `raw` (what a hand-written client may send). */
function stored(raw: Uint8Array): Uint8Array {
  const b = new Uint8Array(5 + raw.byteLength);
  b[0] = 1;
  new DataView(b.buffer).setUint16(1, raw.byteLength, true);
  new DataView(b.buffer).setUint16(3, ~raw.byteLength & 0xffff, true);
  b.set(raw, 5);
  return b;
}

useDeflateCodec(fflateCodec);

describe('deflated key lists', () => {
  it('decodes the segment PROTOCOL.md §3.3.1 shows: keys 5, 7, 10 as a stored block of DELTA32', () => {
    const seg = fromHex('03 01 0000 15000000' + '01 1000 efff 0500000000000000 02000000 03000000' + '000000');
    const f = decodeFrame(pullWith(KeyKind.DEFLATED, 3, seg));
    assert.deepEqual(f.keys, { kind: 'list', keys: Float64Array.of(5, 7, 10) });
  });

  it('round-trips seeded key lists, deflated where it pays, plain where it does not', () => {
    const rng = createRng(31);
    let deflated = 0;
    for (let trial = 0; trial < 60; trial++) {
      const space = rng.next() < 0.3 ? 2 ** 50 : 2 ** (10 + rng.int(20));
      const keys = randomSortedKeys(rng, 1 + rng.int(Math.min(5000, space / 2)), space);
      const f = { ...emptyFrame(MsgType.PULL, 3), flags: Flag.CACHE_KEYS, keys: { kind: 'list' as const, keys } };
      const m = concatParts(encodeFrame(f, undefined, { deflateKeys: true }));
      if (m[20] === KeyKind.DEFLATED) deflated++;
      const back = decodeFrame(m);
      assert.deepEqual(back.keys, { kind: 'list', keys });
      assert.equal(back.flags, Flag.CACHE_KEYS);
      assert.ok(m.byteLength <= concatParts(encodeFrame(f)).byteLength, 'never longer than plain');
    }
    assert.ok(deflated > 20, `${deflated} of 60 lists deflated`);
  });

  it('refuses deflated segments that lie, with their codes', () => {
    const delta = fromHex('0500000000000000 02000000 03000000');
    const cases: Array<[string, Uint8Array, string]> = [
      ['inner RANGES', pullWith(6, 3, segment(5, 1, 0, stored(delta))), 'TS_ERR_FRAME_MALFORMED'],
      ['codec 2', pullWith(6, 3, segment(3, 2, 0, stored(delta))), 'TS_ERR_FRAME_MALFORMED'],
      ['reserved', pullWith(6, 3, segment(3, 1, 7, stored(delta))), 'TS_ERR_FRAME_MALFORMED'],
      ['padding not zero', pullWith(6, 3, segment(3, 1, 0, stored(delta), 9)), 'TS_ERR_FRAME_MALFORMED'],
      ['no keys', pullWith(6, 0, segment(3, 1, 0, stored(new Uint8Array(0)))), 'TS_ERR_FRAME_MALFORMED'],
      ['one key more than it holds', pullWith(6, 4, segment(3, 1, 0, stored(delta))), 'TS_ERR_FRAME_MALFORMED'],
      ['one key fewer', pullWith(6, 2, segment(3, 1, 0, stored(delta))), 'TS_ERR_FRAME_MALFORMED'],
      ['head cut short', pullWith(6, 3, new Uint8Array(4)), 'TS_ERR_FRAME_TRUNCATED'],
      ['stream cut short', pullWith(6, 3, segment(3, 1, 0, stored(delta)).subarray(0, 20)), 'TS_ERR_FRAME_TRUNCATED'],
      ['past deflate’s ratio', pullWith(6, 2000, segment(2, 1, 0, new Uint8Array(4))), 'TS_ERR_FRAME_MALFORMED'],
      [
        'over 64 MiB of keys',
        pullWith(6, 2 ** 23 + 1, segment(2, 1, 0, new Uint8Array(70_000))),
        'TS_ERR_MESSAGE_TOO_LARGE',
      ],
      [
        'unsorted inside',
        pullWith(6, 3, segment(3, 1, 0, stored(fromHex('0500000000000000 02000000 00000000')))),
        'TS_ERR_KEYS_UNSORTED',
      ],
      ['CACHE_KEYS is allowed', pullWith(6, 3, segment(3, 1, 0, stored(delta)), Flag.CACHE_KEYS), 'ok'],
    ];
    for (const [what, m, want] of cases) assert.equal(code(m), want, what);
  });
});
