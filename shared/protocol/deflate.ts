/**
 * The deflate codec of COMPRESSED value segments (PROTOCOL.md §3.4.3): raw deflate (RFC 1951).
 * By default fflate, which runs in browsers and Node alike. A Node process that receives frames
 * from untrusted peers (a server node) installs Node's zlib instead (server/node/zlib-codec.ts):
 * zlib stops inflating at the declared size, while fflate decodes a lying stream to its end
 * (writing nothing past the buffer), so a hostile stream costs it time, not memory.
 */
import { deflateSync, inflateSync } from 'fflate';

export interface DeflateCodec {
  deflate(raw: Uint8Array): Uint8Array;
  /** Exactly `rawBytes` inflated bytes, or null when the stream is corrupt or inflates to any other length. */
  inflate(packed: Uint8Array, rawBytes: number): Uint8Array | null;
}

/** fflate, level 1 (the fastest; values gain little from more). */
export const fflateCodec: DeflateCodec = {
  deflate: (raw) => deflateSync(raw, { level: 1 }),
  inflate(packed, rawBytes) {
    // One byte of room past the declared size tells "too long" apart from "exact".
    const out = new Uint8Array(rawBytes + 1);
    let got: Uint8Array;
    try {
      got = inflateSync(packed, { out });
    } catch {
      return null;
    }
    return got.byteLength === rawBytes ? got.subarray(0, rawBytes) : null;
  },
};

let codec: DeflateCodec = fflateCodec;

/** The codec in use in this process. */
export function deflateCodec(): DeflateCodec {
  return codec;
}

/** Installs `c` for this process (Node's zlib on servers). */
export function useDeflateCodec(c: DeflateCodec): void {
  codec = c;
}
