/**
 * Node's zlib as the deflate codec of COMPRESSED value segments (shared/protocol/deflate.ts): a
 * server node inflates pushes from untrusted workers, and zlib stops at the declared size
 * (`maxOutputLength`) where a lying stream would have fflate decode to its end.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { type DeflateCodec, useDeflateCodec } from '../../shared/protocol/deflate.ts';

export const zlibCodec: DeflateCodec = {
  deflate: (raw) => deflateRawSync(raw, { level: 1 }),
  inflate(packed, rawBytes) {
    try {
      // One byte of room past the declared size tells "too long" apart from "exact"; a
      // truncated stream throws.
      const out = inflateRawSync(packed, { maxOutputLength: rawBytes + 1 });
      return out.byteLength === rawBytes ? out : null;
    } catch {
      return null;
    }
  },
};

/** Makes zlib this process's codec (idempotent). */
export function useZlibCodec(): void {
  useDeflateCodec(zlibCodec);
}
