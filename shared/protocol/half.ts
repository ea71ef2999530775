/**
 * IEEE 754 binary16 ("half") conversion, for the F16 value kind (PROTOCOL.md §3.4.1). Node 20 and
 * today's browsers have no Float16Array, so the bits are computed here: float32 → half rounds to
 * nearest, ties to even; a finite float32 beyond the largest half (65504) saturates to ±65504
 * instead of becoming infinite (a push stays finite; error feedback keeps the rest); ±Infinity
 * stays infinite and NaN stays NaN, for the receiver's finite check to refuse.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half bits of `x` (rounded to nearest even; finite values saturate at ±65504). */
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) !== 0)) h++;
    return sign | h; // a carry into the exponent gives the smallest normal, as it should
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  if (h >= 0x7c00) h = 0x7bff; // rounded past the largest finite half
  return sign | h;
}

let table: Float32Array | null = null;

/** Every half's float32 value, indexed by its bits (256 KiB, built on first use). */
export function halfTable(): Float32Array {
  if (table) return table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  table = t;
  return t;
}

/** Writes the halves of `src` into `out` (same length). */
export function encodeHalves(src: Float32Array, out: Uint16Array): void {
  for (let i = 0; i < src.length; i++) out[i] = toHalf(src[i]);
}

/** Writes the float32 values of the halves `src` into `out` (same length). */
export function decodeHalves(src: Uint16Array, out: Float32Array): void {
  const t = halfTable();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
}
