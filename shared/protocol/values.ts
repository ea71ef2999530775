/**
 * Value segments besides plain float32 (PROTOCOL.md §3.4): F16 (IEEE halves), Q8 (int8 with one
 * float32 scale per block of 256 values) and COMPRESSED (one of those, or F32, deflated).
 *
 * `packValues` turns floats into a segment and writes what the receiver will read back into
 * `sent` (the worker's error feedback subtracts it from what it meant to send); `unpackValues` is
 * the decoder's half: total, it either returns the floats or throws a coded error, and it never
 * allocates before the segment's declared sizes are checked against its bytes.
 */
import { TabshardError } from '../errors.ts';
import { deflateCodec } from './deflate.ts';
import { decodeHalves, encodeHalves } from './half.ts';

/** Value kinds that carry floats (the frame's byte 21; NONE 0 and BYTES 2 are the others). */
export const FloatKind = { F32: 1, F16: 3, COMPRESSED: 4, Q8: 5 } as const;

/** How a push or a reply encodes its floats. */
export type ValueCodec = 'f32' | 'f16' | 'q8';
export const VALUE_CODECS: readonly ValueCodec[] = ['f32', 'f16', 'q8'];

/** Values per Q8 scale. */
export const Q8_BLOCK = 256;
/** The COMPRESSED segment's codec byte for raw deflate (RFC 1951). */
export const DEFLATE = 1;
/** Bytes of the COMPRESSED segment's own header (inner kind, codec, reserved, rawBytes). */
export const COMPRESSED_HEAD = 8;
/** Largest inflated segment a receiver accepts (a relay's message limit). */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
/** Deflate's own bound on expansion (a 258-byte match per bit, at best): more is a lie. */
export const MAX_DEFLATE_RATIO = 1032;
/** Compress only segments at least this long, and keep the result only if it is ≤ 7/8 of the raw. */
export const COMPRESS_MIN_BYTES = 512;

/** A value segment as it goes on the wire: its kind (byte 21) and bytes. */
export interface PackedValues {
  kind: number;
  bytes: Uint8Array;
}

const malformed = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

const KIND_OF: Record<ValueCodec, number> = { f32: FloatKind.F32, f16: FloatKind.F16, q8: FloatKind.Q8 };

/** Bytes of a Q8 segment of `count` values. */
export function q8Bytes(count: number): number {
  return 4 + 4 * Math.ceil(count / Q8_BLOCK) + count;
}

/**
 * Encodes `src` as `codec` and writes the values the receiver will decode into `sent` (same length
 * as `src`; may be `src` itself: f32 leaves it as it is).
 */
export function packValues(src: Float32Array, codec: ValueCodec, sent?: Float32Array): PackedValues {
  const kind = KIND_OF[codec];
  if (codec === 'f32') {
    if (sent && sent !== src) sent.set(src);
    return { kind, bytes: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) };
  }
  if (codec === 'f16') {
    const halves = new Uint16Array(src.length);
    encodeHalves(src, halves);
    if (sent) decodeHalves(halves, sent);
    return { kind, bytes: new Uint8Array(halves.buffer) };
  }
  return { kind, bytes: packQ8(src, sent) };
}

/** Q8: `count:u32`, ⌈count/256⌉ × `scale:f32`, count × `i8`; value = i8 · scale (float32). */
function packQ8(src: Float32Array, sent?: Float32Array): Uint8Array {
  const n = src.length;
  const blocks = Math.ceil(n / Q8_BLOCK);
  const bytes = new Uint8Array(q8Bytes(n));
  const head = new Uint32Array(bytes.buffer, 0, 1 + blocks);
  head[0] = n;
  const scales = new Float32Array(bytes.buffer, 4, blocks);
  const q = new Int8Array(bytes.buffer, 4 + 4 * blocks, n);
  for (let b = 0; b < blocks; b++) {
    const lo = b * Q8_BLOCK;
    const hi = Math.min(n, lo + Q8_BLOCK);
    let max = 0;
    for (let i = lo; i < hi; i++) {
      const a = Math.abs(src[i]);
      if (a > max) max = a;
      else if (Number.isNaN(a)) {
        max = Number.NaN;
        break;
      }
    }
    // A non-finite value makes the scale non-finite: the receiver's finite check refuses the push.
    const scale = Math.fround(max / 127);
    scales[b] = scale;
    if (scale === 0 || !Number.isFinite(scale)) {
      for (let i = lo; i < hi; i++) {
        q[i] = 0;
        if (sent) sent[i] = 0 * scale; // 0, or NaN as the receiver reads it
      }
      continue;
    }
    for (let i = lo; i < hi; i++) {
      let v = Math.round(src[i] / scale);
      if (v > 127) v = 127;
      else if (v < -127) v = -127;
      q[i] = v;
      if (sent) sent[i] = q[i] * scale; // the int8 as stored (no −0), rounded to float32 as the decoder does
    }
  }
  return bytes;
}

function unpackQ8(seg: Uint8Array): Float32Array {
  if (seg.byteLength < 4) throw malformed('Q8 segment shorter than its count');
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  const n = dv.getUint32(0, true);
  if (q8Bytes(n) !== seg.byteLength) throw malformed(`Q8 segment of ${seg.byteLength} bytes for ${n} values`);
  const blocks = Math.ceil(n / Q8_BLOCK);
  const out = new Float32Array(n);
  const qAt = 4 + 4 * blocks;
  for (let b = 0; b < blocks; b++) {
    const scale = dv.getFloat32(4 + 4 * b, true);
    const lo = b * Q8_BLOCK;
    const hi = Math.min(n, lo + Q8_BLOCK);
    for (let i = lo; i < hi; i++) out[i] = ((seg[qAt + i] << 24) >> 24) * scale;
  }
  return out;
}

function unpackF16(seg: Uint8Array): Float32Array {
  const n = seg.byteLength >> 1;
  const halves =
    seg.byteOffset % 2 === 0 ? new Uint16Array(seg.buffer, seg.byteOffset, n) : new Uint16Array(seg.slice().buffer);
  const out = new Float32Array(n);
  decodeHalves(halves, out);
  return out;
}

/**
 * The length rule of a float kind's segment (checked from the header alone, PROTOCOL.md §3.6
 * step 11): null when `bytes` can be a segment of `kind`, else why not. Unknown kinds are the
 * caller's to refuse.
 */
export function segmentLengthError(kind: number, bytes: number): string | null {
  switch (kind) {
    case FloatKind.F32:
      return bytes % 4 === 0 ? null : 'float32 segment not a multiple of 4 bytes';
    case FloatKind.F16:
      return bytes % 2 === 0 ? null : 'float16 segment not a multiple of 2 bytes';
    case FloatKind.Q8:
      return bytes >= 4 ? null : 'Q8 segment shorter than its count';
    case FloatKind.COMPRESSED:
      return bytes >= COMPRESSED_HEAD ? null : 'compressed segment shorter than its header';
    default:
      return null;
  }
}

/** The floats of a segment of float kind `kind` (its length rule already checked); total. */
export function unpackValues(kind: number, seg: Uint8Array): Float32Array {
  switch (kind) {
    case FloatKind.F16:
      return unpackF16(seg);
    case FloatKind.Q8:
      return unpackQ8(seg);
    case FloatKind.COMPRESSED:
      return unpackCompressed(seg);
    default: {
      const at = seg.byteOffset;
      return at % 4 === 0
        ? new Float32Array(seg.buffer, at, seg.byteLength >> 2)
        : new Float32Array(seg.slice().buffer);
    }
  }
}

/** COMPRESSED: `inner:u8`, `codec:u8`, `reserved:u16` = 0, `rawBytes:u32`, then the deflated inner segment. */
function unpackCompressed(seg: Uint8Array): Float32Array {
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  const inner = dv.getUint8(0);
  if (inner !== FloatKind.F32 && inner !== FloatKind.F16 && inner !== FloatKind.Q8)
    throw malformed(`compressed segment of inner kind ${inner}`);
  const codec = dv.getUint8(1);
  if (codec !== DEFLATE) throw malformed(`compression codec ${codec} not supported`);
  if (dv.getUint16(2, true) !== 0) throw malformed('compressed segment: reserved bytes must be zero');
  const raw = dv.getUint32(4, true);
  const why = segmentLengthError(inner, raw);
  if (why) throw malformed(`compressed ${why}`);
  const packed = seg.byteLength - COMPRESSED_HEAD;
  if (raw > MAX_INFLATED_BYTES)
    throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', `compressed segment declares ${raw} bytes`);
  if (raw > MAX_DEFLATE_RATIO * packed) throw malformed(`${packed} deflated bytes cannot hold ${raw}`);
  const bytes = deflateCodec().inflate(seg.subarray(COMPRESSED_HEAD), raw);
  if (bytes === null) throw malformed(`compressed segment does not inflate to its ${raw} bytes`);
  return unpackValues(inner, bytes);
}

/**
 * A reply's or publication's values, given as parts (views of a store), packed into one segment as
 * a reader asked (flags HALF, COMPRESS): F16 or F32, deflated where that pays. A copy: the parts
 * may be released at once.
 */
export function packParts(parts: readonly Float32Array[], half: boolean, compress: boolean): PackedValues {
  const packed = packValues(concatFloats(parts), half ? 'f16' : 'f32');
  return compress ? compressValues(packed) : packed;
}

/** The floats of `parts` one after another, in a fresh array. */
export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const all = new Float32Array(n);
  n = 0;
  for (const p of parts) {
    all.set(p, n);
    n += p.length;
  }
  return all;
}

/**
 * The COMPRESSED segment of `p` when deflating it pays (`p` at least COMPRESS_MIN_BYTES and the
 * result at most 7/8 of it), else `p` itself.
 */
export function compressValues(p: PackedValues): PackedValues {
  const raw = p.bytes.byteLength;
  if (raw < COMPRESS_MIN_BYTES) return p;
  const z = deflateCodec().deflate(p.bytes);
  if (COMPRESSED_HEAD + z.byteLength > (raw * 7) / 8) return p;
  const bytes = new Uint8Array(COMPRESSED_HEAD + z.byteLength);
  bytes[0] = p.kind;
  bytes[1] = DEFLATE;
  new DataView(bytes.buffer).setUint32(4, raw, true);
  bytes.set(z, COMPRESSED_HEAD);
  return { kind: FloatKind.COMPRESSED, bytes };
}

/**
 * A job's traffic options, sent with every task (TASK `traffic`, PROTOCOL.md §6.1): how its
 * workers encode their pushes, whether they ask for F16 pull replies, whether values are deflated.
 */
export interface TrafficOptions {
  push?: ValueCodec;
  pullHalf?: boolean;
  compress?: boolean;
  /**
   * The significantly-modified filter: a pushed value whose accumulated change (with what earlier
   * pushes held back) is below this in magnitude goes as 0 and is kept for the next push.
   */
  threshold?: number;
  /**
   * The same filter relative to each push: values below this fraction of the root mean square of
   * their node part (with what was held back) go as 0. With `threshold` too, the larger applies.
   */
  thresholdRms?: number;
}

/** Traffic options from untrusted JSON (`bad` makes the error); undefined when absent or all defaults. */
export function parseTraffic(v: unknown, bad: (why: string) => Error): TrafficOptions | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('traffic must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'push' && k !== 'pullHalf' && k !== 'compress' && k !== 'threshold' && k !== 'thresholdRms')
      throw bad(`traffic.${k} is not an option`);
  const out: TrafficOptions = {};
  if (o.push !== undefined) {
    if (!(VALUE_CODECS as readonly unknown[]).includes(o.push)) throw bad('traffic.push must be f32, f16 or q8');
    if (o.push !== 'f32') out.push = o.push as ValueCodec;
  }
  for (const k of ['pullHalf', 'compress'] as const) {
    if (o[k] === undefined || o[k] === false) continue;
    if (o[k] !== true) throw bad(`traffic.${k} must be a boolean`);
    out[k] = true;
  }
  for (const k of ['threshold', 'thresholdRms'] as const) {
    const t = o[k];
    if (t === undefined) continue;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw bad(`traffic.${k} must be a finite number ≥ 0`);
    if (t > 0) out[k] = t;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
