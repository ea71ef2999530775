/**
 * Test support for value segments (shared/protocol/values.ts): frames to decode, the lying
 * COMPRESSED segments every decoder must refuse, and a fuzzer, run under each deflate codec
 * (fflate in shared/protocol/values.test.ts, zlib in server/node/zlib-codec.test.ts).
 */
import { TabshardError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { concatParts } from '../transport/types.ts';
import { type DeflateCodec, useDeflateCodec } from './deflate.ts';
import { decodeFrame } from './frame.ts';
import { asPush, encodePush } from './kv.ts';
import {
  COMPRESSED_HEAD,
  compressValues,
  FloatKind,
  MAX_INFLATED_BYTES,
  type PackedValues,
  packValues,
} from './values.ts';

/** The code a decode of `m` ends in ('ok' if it decodes). */
export function code(m: Uint8Array): string {
  try {
    decodeFrame(m);
    return 'ok';
  } catch (e) {
    if (!(e instanceof TabshardError)) throw e;
    return e.code;
  }
}

/** A PUSH of keys 0…n−1 whose value segment is `p`. */
export function pushOf(p: PackedValues, n: number): Uint8Array {
  return concatParts(
    encodePush({
      requestId: 1,
      job: 1,
      table: 2,
      clock: 0,
      task: null,
      keys: { kind: 'range', begin: 0, end: n },
      values: p,
    }),
  );
}

export function gaussians(seed: number, n: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return Float32Array.from({ length: n }, () => normal() * scale);
}

/** The float32 just below the positive float32 `x`. */
export function below32(x: number): number {
  const f = Float32Array.of(x);
  new Uint32Array(f.buffer)[0]--;
  return f[0];
}

/** A COMPRESSED segment with header fields as given around `data`. */
const compressed = (inner: number, codec: number, reserved: number, raw: number, data: Uint8Array) => {
  const b = new Uint8Array(COMPRESSED_HEAD + data.byteLength);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, inner);
  dv.setUint8(1, codec);
  dv.setUint16(2, reserved, true);
  dv.setUint32(4, raw, true);
  b.set(data, COMPRESSED_HEAD);
  return { kind: FloatKind.COMPRESSED, bytes: b };
};

/** Lying COMPRESSED segments of a 4096-float push, what each lie is, and the code it must get. */
export function lyingSegments(): Array<[string, PackedValues, string]> {
  const raw = packValues(
    Float32Array.from({ length: 4096 }, (_, i) => i % 3),
    'f32',
  );
  const data = compressValues(raw).bytes.subarray(COMPRESSED_HEAD);
  return [
    ['inner kind BYTES', compressed(2, 1, 0, 16384, data), 'TS_ERR_FRAME_MALFORMED'],
    ['nested COMPRESSED', compressed(4, 1, 0, 16384, data), 'TS_ERR_FRAME_MALFORMED'],
    ['codec 2', compressed(1, 2, 0, 16384, data), 'TS_ERR_FRAME_MALFORMED'],
    ['reserved bytes', compressed(1, 1, 1, 16384, data), 'TS_ERR_FRAME_MALFORMED'],
    ['F32 of 16383 bytes', compressed(1, 1, 0, 16383, data), 'TS_ERR_FRAME_MALFORMED'],
    ['expands past its size', compressed(1, 1, 0, 16380, data), 'TS_ERR_FRAME_MALFORMED'],
    ['short of its size', compressed(1, 1, 0, 16388, data), 'TS_ERR_FRAME_MALFORMED'],
    ['truncated stream', compressed(1, 1, 0, 16384, data.subarray(0, data.length - 4)), 'TS_ERR_FRAME_MALFORMED'],
    ['not deflate', compressed(1, 1, 0, 16, Uint8Array.of(0xff, 0xff, 0xff, 0xff)), 'TS_ERR_FRAME_MALFORMED'],
    ['past deflate’s ratio', compressed(1, 1, 0, 1032 * 4 + 4, new Uint8Array(4)), 'TS_ERR_FRAME_MALFORMED'],
    ['over 64 MiB', compressed(1, 1, 0, MAX_INFLATED_BYTES + 4, new Uint8Array(70_000)), 'TS_ERR_MESSAGE_TOO_LARGE'],
  ];
}

/**
 * Decodes `count` mutations of F16, Q8 and F32 pushes, plain and deflated, with a range or a
 * deflated key list (by `codec`, which also inflates), each ending in a frame or a TabshardError (anything else throws); returns how many
 * decoded.
 */
export function fuzzValueFrames(seed: number, count: number, codec: DeflateCodec): number {
  useDeflateCodec(codec);
  const rng = createRng(seed);
  const v = gaussians(5, 700);
  for (let i = 0; i < 700; i += 3) v[i] = 0;
  // Keys of a deflated list (key kind DEFLATED) for some seeds: 700 keys, gaps of 1 to 40.
  const keys = new Float64Array(700);
  for (let i = 1; i < 700; i++) keys[i] = keys[i - 1] + 1 + rng.int(40);
  const listPush = (p: PackedValues) =>
    concatParts(
      encodePush(
        { requestId: 1, job: 1, table: 2, clock: 0, task: null, keys: { kind: 'list', keys }, values: p },
        { deflateKeys: true },
      ),
    );
  const seeds = (['f16', 'q8', 'f32'] as const).flatMap((c) => {
    const p = packValues(v, c);
    return [pushOf(p, 700), pushOf(compressValues(p), 700), listPush(compressValues(p))];
  });
  if (seeds[2][20] !== 6) throw new Error('the list seed is not deflated');
  if (!seeds.every((s) => code(s) === 'ok')) throw new Error('a seed frame does not decode');
  let decoded = 0;
  for (let i = 0; i < count; i++) {
    let m = seeds[i % seeds.length].slice();
    // Mutate the header's value fields, the segment's own header and its body.
    for (let k = 1 + rng.int(3); k > 0; k--) {
      const at = rng.next() < 0.3 ? 20 + rng.int(12) : 32 + rng.int(m.length - 32);
      m[at] = rng.int(256);
    }
    if (rng.next() < 0.1) m = m.subarray(0, rng.int(m.length + 1));
    try {
      const f = decodeFrame(m);
      decoded++;
      if (f.values) asPush(f);
    } catch (e) {
      if (!(e instanceof TabshardError)) throw e;
    }
  }
  return decoded;
}
