/**
 * Deflated key lists (key kind DEFLATED, PROTOCOL.md §3.3.1): a LIST64 or DELTA32 segment, raw
 * deflate, behind an 8-byte head — `inner:u8` (2 or 3), `codec:u8` (1), `reserved:u16` (0),
 * `packedBytes:u32` — then the stream and zero padding to a multiple of 4. The frame codec
 * (frame.ts) calls these; the inflated segment is then decoded and checked like a plain one.
 */
import { TabshardError } from '../errors.ts';
import { deflateCodec } from './deflate.ts';
import { DEFLATE, MAX_DEFLATE_RATIO, MAX_INFLATED_BYTES } from './values.ts';

/** Bytes of the DEFLATED key segment's head. */
export const PACKED_KEYS_HEAD = 8;
/** Deflate only key segments at least this long. */
export const PACK_KEYS_MIN_BYTES = 512;

const LIST64 = 2;
const DELTA32 = 3;
const malformed = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);
const pad4 = (n: number) => (n + 3) & ~3;

/** The DEFLATED segment's length on the wire, from its head (at `off` of `dv`, 8 bytes present). */
export function packedKeysBytes(dv: DataView, off: number): number {
  return PACKED_KEYS_HEAD + pad4(dv.getUint32(off + 4, true));
}

/**
 * The plain key segment (`inner` kind and bytes) of a DEFLATED segment `seg` of `n` keys, its
 * head, padding and inflated length checked (PROTOCOL.md §3.6 steps 26–29).
 */
export function inflateKeys(seg: Uint8Array, n: number): { delta: boolean; bytes: Uint8Array } {
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  const inner = dv.getUint8(0);
  if (inner !== LIST64 && inner !== DELTA32) throw malformed(`deflated keys of inner kind ${inner}`);
  if (dv.getUint8(1) !== DEFLATE) throw malformed(`compression codec ${dv.getUint8(1)} not supported`);
  if (dv.getUint16(2, true) !== 0) throw malformed('deflated keys: reserved bytes must be zero');
  if (n === 0) throw malformed('deflated keys: an empty list is sent plain');
  const packed = dv.getUint32(4, true);
  for (let i = PACKED_KEYS_HEAD + packed; i < seg.byteLength; i++)
    if (seg[i] !== 0) throw malformed('deflated keys: padding must be zero');
  const raw = inner === LIST64 ? 8 * n : 8 + 4 * (n - 1);
  if (raw > MAX_INFLATED_BYTES) throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', `deflated keys declare ${n} keys`);
  if (raw > MAX_DEFLATE_RATIO * packed) throw malformed(`${packed} deflated bytes cannot hold ${n} keys`);
  const bytes = deflateCodec().inflate(seg.subarray(PACKED_KEYS_HEAD, PACKED_KEYS_HEAD + packed), raw);
  if (bytes === null) throw malformed(`deflated keys do not inflate to their ${raw} bytes`);
  return { delta: inner === DELTA32, bytes };
}

/**
 * A DEFLATED key segment of the plain one `plain` (of kind `inner`), written at `at` of a fresh
 * array of `at` + its length; null when deflating does not pay (shorter than 512 bytes, or more
 * than 7/8 of them after).
 */
export function deflateKeys(plain: Uint8Array, inner: number, at: number): Uint8Array | null {
  if (plain.byteLength < PACK_KEYS_MIN_BYTES) return null;
  const z = deflateCodec().deflate(plain);
  const bytes = PACKED_KEYS_HEAD + pad4(z.byteLength);
  if (bytes > (plain.byteLength * 7) / 8) return null;
  const head = new Uint8Array(at + bytes);
  head[at] = inner;
  head[at + 1] = DEFLATE;
  new DataView(head.buffer).setUint32(at + 4, z.byteLength, true);
  head.set(z, at + PACKED_KEYS_HEAD);
  return head;
}
