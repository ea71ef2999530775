/**
 * The server node's deflate codec (zlib): it refuses the same lying COMPRESSED segments as the
 * tab's (fflate), survives the same fuzzing, and each inflates what the other deflates.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fflateCodec, useDeflateCodec } from '../../shared/protocol/deflate.ts';
import { compressValues, packValues, unpackValues } from '../../shared/protocol/values.ts';
import { code, fuzzValueFrames, lyingSegments, pushOf } from '../../shared/protocol/values-testkit.ts';
import { zlibCodec } from './zlib-codec.ts';

after(() => useDeflateCodec(fflateCodec));

describe('zlib as the deflate codec', () => {
  it('refuses compressed segments that lie, before allocating what they claim', () => {
    useDeflateCodec(zlibCodec);
    for (const [what, p, want] of lyingSegments()) assert.equal(code(pushOf(p, 4096)), want, what);
  });

  it('inflates what fflate deflates and the other way round', () => {
    const v = packValues(
      Float32Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? i : 0)),
      'f32',
    );
    for (const [from, to] of [
      [fflateCodec, zlibCodec],
      [zlibCodec, fflateCodec],
    ]) {
      useDeflateCodec(from);
      const z = compressValues(v);
      useDeflateCodec(to);
      assert.deepEqual(unpackValues(z.kind, z.bytes), unpackValues(v.kind, v.bytes));
    }
  });

  it('ends every one of 60,000 mutated F16, Q8 and COMPRESSED frames in a frame or a TabshardError', () => {
    const decoded = fuzzValueFrames(7, 60_000, zlibCodec);
    assert.ok(decoded > 500, `some mutations stay valid (${decoded})`);
  });
});
