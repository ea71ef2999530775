import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { fflateCodec, useDeflateCodec } from './deflate.ts';
import { decodeFrame, emptyFrame, encodeFrame, Flag, MsgType, ValueKind } from './frame.ts';
import { halfTable, toHalf } from './half.ts';
import { asPull, encodePull, encodePullReply } from './kv.ts';
import { asSubscribe, encodeSubscribe } from './subscribe.ts';
import { compressValues, FloatKind, packValues, parseTraffic, Q8_BLOCK, unpackValues } from './values.ts';
import { below32, code, fuzzValueFrames, gaussians, lyingSegments, pushOf } from './values-testkit.ts';

const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');
const fromHex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const CODECS = [['fflate', fflateCodec]] as const;
after(() => useDeflateCodec(fflateCodec));

describe('half precision', () => {
  it('maps every finite half to itself, and a value between two halves to the nearer (ties to even)', () => {
    const t = halfTable();
    for (let h = 0; h < 0x7c00; h++) {
      assert.equal(toHalf(t[h]), h);
      assert.equal(toHalf(t[h | 0x8000]), h | 0x8000);
    }
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (t[h] + t[h + 1]) / 2; // exact in float32: halves have 11 significant bits
      assert.equal(toHalf(mid), h % 2 === 0 ? h : h + 1, `between ${h} and ${h + 1}`);
      assert.equal(toHalf(below32(mid)), h);
    }
  });

  it('saturates finite overflow at ±65504, keeps infinities and NaN, flushes tiny values to ±0', () => {
    assert.equal(toHalf(1e6), 0x7bff);
    assert.equal(toHalf(-65520), 0xfbff);
    assert.equal(toHalf(Number.POSITIVE_INFINITY), 0x7c00);
    assert.equal(toHalf(Number.NEGATIVE_INFINITY), 0xfc00);
    assert.ok(Number.isNaN(halfTable()[toHalf(Number.NaN)]));
    assert.equal(toHalf(2 ** -26), 0);
    assert.equal(toHalf(-(2 ** -26)), 0x8000);
    assert.equal(toHalf(2 ** -24), 1);
  });
});

describe('value segments', () => {
  it('packs F16 and Q8 as PROTOCOL.md §3.4 documents (fixtures), and writes what the receiver reads', () => {
    assert.equal(hex(packValues(Float32Array.of(1, -2, 0.5), 'f16').bytes), '003c00c00038');
    const sent = new Float32Array(3);
    const q8 = packValues(Float32Array.of(1, -0.5, 0.25), 'q8', sent);
    assert.equal(q8.kind, FloatKind.Q8);
    // count 3, scale float32(1/127), then 127, −64, 32
    assert.equal(hex(q8.bytes), '03000000' + '0402013c' + '7fc020');
    assert.deepEqual(Array.from(unpackValues(FloatKind.Q8, q8.bytes)), Array.from(sent));
  });

  it('decodes a COMPRESSED push written by hand (a stored deflate block) as PROTOCOL.md §3.4.3 shows', () => {
    for (const [name, c] of CODECS) {
      useDeflateCodec(c);
      const seg = fromHex('01 01 0000 08000000' + '01 0800 f7ff 0000803f 00000040');
      const f = decodeFrame(pushOf({ kind: FloatKind.COMPRESSED, bytes: seg }, 2));
      assert.deepEqual(Array.from(f.values!), [1, 2], name);
      assert.equal(f.valueKind, ValueKind.COMPRESSED);
      assert.equal(f.valueBytes, seg.byteLength);
    }
  });

  it('round-trips seeded random values: F16 within half a unit, Q8 within half a scale, deflate exactly', () => {
    const rng = createRng(11);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + rng.int(3000);
      const v = gaussians(trial, n, 10 ** (rng.int(7) - 3));
      for (let i = 0; i < n; i += 1 + rng.int(8)) v[i] = 0;
      const sent16 = new Float32Array(n);
      const f16 = packValues(v, 'f16', sent16);
      const back16 = unpackValues(f16.kind, f16.bytes);
      assert.deepEqual(back16, sent16);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(back16[i] - v[i]) <= Math.abs(v[i]) * 2 ** -11 + 2 ** -25);
      const sent8 = new Float32Array(n);
      const q8 = packValues(v, 'q8', sent8);
      const back8 = unpackValues(q8.kind, q8.bytes);
      assert.deepEqual(back8, sent8);
      for (let b = 0; b < n; b += Q8_BLOCK) {
        let max = 0;
        for (let i = b; i < Math.min(n, b + Q8_BLOCK); i++) max = Math.max(max, Math.abs(v[i]));
        for (let i = b; i < Math.min(n, b + Q8_BLOCK); i++)
          assert.ok(Math.abs(back8[i] - v[i]) <= (max / 127) * 0.5001 + 1e-30, `q8 ${i}`);
      }
      for (const [name, c] of CODECS) {
        useDeflateCodec(c);
        for (const p of [packValues(v, 'f32'), f16, q8]) {
          const z = compressValues(p);
          const back = unpackValues(z.kind, z.bytes);
          assert.deepEqual(back, unpackValues(p.kind, p.bytes), `${name} kind ${p.kind}`);
        }
      }
    }
  });

  it('compresses a segment only when it pays: mostly-zero values shrink, random floats stay as they are', () => {
    const zeros = new Float32Array(10_000);
    zeros[17] = 3;
    const z = compressValues(packValues(zeros, 'f16'));
    assert.equal(z.kind, FloatKind.COMPRESSED);
    assert.ok(z.bytes.byteLength < 200, `${z.bytes.byteLength} bytes`);
    const noise = packValues(gaussians(3, 10_000), 'f32');
    assert.equal(compressValues(noise), noise);
    const short = packValues(new Float32Array(16), 'f32');
    assert.equal(compressValues(short), short);
  });
});

describe('value segments: the decoder refuses', () => {
  it('segments whose lengths break their kind’s rule, each with its code', () => {
    const odd = { kind: FloatKind.F16, bytes: new Uint8Array(3) };
    assert.equal(code(pushOf(odd, 1)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(pushOf({ kind: FloatKind.Q8, bytes: new Uint8Array(3) }, 1)), 'TS_ERR_FRAME_MALFORMED');
    const q = packValues(gaussians(1, 300), 'q8');
    new DataView(q.bytes.buffer).setUint32(0, 301, true); // one value more than the bytes hold
    assert.equal(code(pushOf(q, 300)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(pushOf({ kind: 6, bytes: new Uint8Array(4) }, 1)), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(pushOf({ kind: FloatKind.COMPRESSED, bytes: new Uint8Array(7) }, 1)), 'TS_ERR_FRAME_MALFORMED');
  });

  it('compressed segments that lie, before allocating what they claim', () => {
    useDeflateCodec(fflateCodec);
    for (const [what, p, want] of lyingSegments()) assert.equal(code(pushOf(p, 4096)), want, what);
  });

  it('HALF and COMPRESS on anything but a PULL or SUBSCRIBE', () => {
    const ack = concatParts(encodeFrame({ ...emptyFrame(MsgType.ACK, 1), flags: Flag.HALF }));
    assert.equal(code(ack), 'TS_ERR_FRAME_MALFORMED');
    const pull = concatParts(
      encodePull({
        requestId: 1,
        job: 1,
        table: 1,
        clock: 0,
        keys: { kind: 'range', begin: 0, end: 9 },
        flags: Flag.HALF | Flag.COMPRESS,
      }),
    );
    const m = asPull(decodeFrame(pull));
    assert.equal(m.half, true);
    assert.equal(m.compress, true);
    const sub = concatParts(
      encodeSubscribe({
        requestId: 1,
        job: 1,
        table: 1,
        subscription: 4,
        keys: { kind: 'range', begin: 0, end: 9 },
        half: true,
      }),
    );
    assert.deepEqual(asSubscribe(decodeFrame(sub)), {
      requestId: 1,
      job: 1,
      table: 1,
      subscription: 4,
      keys: { kind: 'range', begin: 0, end: 9 },
      half: true,
    });
  });
});

describe('pull replies', () => {
  it('answer a HALF pull with halves, COMPRESS with a deflated segment, and the reader gets the floats', () => {
    useDeflateCodec(fflateCodec);
    const w = new Float32Array(4096);
    for (let i = 0; i < w.length; i += 9) w[i] = i / 7;
    const parts = [w.subarray(0, 1000), w.subarray(1000)];
    const plain = concatParts(encodePullReply(5, parts));
    const half = decodeFrame(concatParts(encodePullReply(5, parts, { half: true, compress: false })));
    assert.equal(half.valueKind, FloatKind.F16);
    for (let i = 0; i < w.length; i++) assert.equal(half.values![i], halfTable()[toHalf(w[i])]);
    const both = concatParts(encodePullReply(5, parts, { half: true, compress: true }));
    const f = decodeFrame(both);
    assert.equal(f.valueKind, FloatKind.COMPRESSED);
    assert.deepEqual(f.values, half.values);
    assert.ok(both.byteLength * 8 < plain.byteLength, `${both.byteLength} vs ${plain.byteLength}`);
  });
});

describe('traffic options', () => {
  it('parse what a TASK may carry and refuse anything else', () => {
    const bad = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);
    assert.deepEqual(parseTraffic({ push: 'q8', pullHalf: true, compress: true }, bad), {
      push: 'q8',
      pullHalf: true,
      compress: true,
    });
    assert.equal(parseTraffic({ push: 'f32', compress: false, threshold: 0 }, bad), undefined);
    assert.deepEqual(parseTraffic({ threshold: 0.01, thresholdRms: 0.5 }, bad), { threshold: 0.01, thresholdRms: 0.5 });
    for (const v of [
      { push: 'f8' },
      { pullHalf: 1 },
      { zip: true },
      [],
      'q8',
      { threshold: -1 },
      { threshold: '1' },
      { thresholdRms: Number.NaN },
    ])
      assert.throws(() => parseTraffic(v, bad), /traffic/);
  });
});

describe('fuzzing the new value kinds', () => {
  it('ends every one of 100,000 mutated F16, Q8 and COMPRESSED frames in a frame or a TabshardError', () => {
    const decoded = fuzzValueFrames(99, 100_000, fflateCodec);
    assert.ok(decoded > 1000, `some mutations stay valid (${decoded})`);
  });
});
