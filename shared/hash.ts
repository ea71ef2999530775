/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain; reference code `MurmurHash3_x86_32` in
 * https://github.com/aappleby/smhasher/blob/master/src/MurmurHash3.cpp). Used by the ring to place
 * virtual nodes and tables, so the exact bits matter: any other language must produce the same
 * values. Blocks are read little-endian, as on x86. No allocation beyond the UTF-8 encoding.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const encoder = new TextEncoder();

/** MurmurHash3 x86_32 of `bytes` with a 32-bit `seed`; returns an unsigned 32-bit integer. */
export function murmur3_32(bytes: Uint8Array, seed = 0): number {
  const len = bytes.length;
  const nblocks = len >>> 2;
  let h = seed >>> 0;
  let i = 0;
  for (let b = 0; b < nblocks; b++, i += 4) {
    h = murmur3Block(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  }
  // Tail: the remaining 1..3 bytes, little-endian.
  const rem = len & 3;
  if (rem !== 0) {
    let k = 0;
    if (rem === 3) k ^= bytes[i + 2] << 16;
    if (rem >= 2) k ^= bytes[i + 1] << 8;
    k ^= bytes[i];
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  // Finalization: the length is mixed in modulo 2^32, as in the reference.
  return murmur3Fmix(h ^ len);
}

/** One 4-byte block of MurmurHash3 x86_32: mixes the 32-bit word `k` into the state `h`. */
export function murmur3Block(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's finalization mix (fmix32); returns an unsigned 32-bit integer. */
export function murmur3Fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of the UTF-8 encoding of `s` (lone surrogates become U+FFFD, as TextEncoder does). */
export function hashString(s: string, seed = 0): number {
  return murmur3_32(encoder.encode(s), seed);
}
