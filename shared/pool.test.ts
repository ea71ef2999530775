/**
 * BufferPool never lends a buffer twice at once and ignores what it did not lend; smallBytes
 * hands out disjoint, zeroed, aligned arrays.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool, smallBytes } from './pool.ts';

describe('BufferPool', () => {
  it('does not lend a buffer again before it is given back, then reuses it', () => {
    const pool = new BufferPool(1024);
    const a = pool.take(4096);
    const b = pool.take(4096);
    assert.equal(a.byteLength, 4096);
    assert.notEqual(a.buffer, b.buffer);
    pool.give(a);
    const c = pool.take(2048); // fits in a's buffer
    assert.equal(c.buffer, a.buffer);
    assert.equal(c.byteLength, 2048);
    assert.notEqual(pool.take(4096).buffer, b.buffer); // b is still lent
  });

  it('ignores buffers it did not lend, small ones, and a second give of the same buffer', () => {
    const pool = new BufferPool(1024);
    pool.give(new Uint8Array(8192));
    assert.equal(pool.idle, 0);
    const small = pool.take(100);
    pool.give(small);
    assert.equal(pool.idle, 0);
    const a = pool.take(4096);
    pool.give(a);
    pool.give(a);
    assert.equal(pool.idle, 1);
    const x = pool.take(4096);
    const y = pool.take(4096);
    assert.notEqual(x.buffer, y.buffer);
  });

  it('does not pool requests above maxBytes', () => {
    const pool = new BufferPool(1024, 4, 8192);
    const big = pool.take(8193);
    pool.give(big);
    assert.equal(pool.idle, 0);
  });

  it('keeps at most `keep` idle buffers, preferring the largest', () => {
    const pool = new BufferPool(1024, 2);
    const bufs = [2048, 8192, 4096].map((n) => pool.take(n));
    for (const b of bufs) pool.give(b);
    assert.equal(pool.idle, 2);
    assert.equal(pool.take(8000).buffer.byteLength, 8192);
    assert.equal(pool.take(4000).buffer.byteLength, 4096);
  });
});

describe('smallBytes', () => {
  it('returns zeroed, 8-byte aligned arrays that do not overlap', () => {
    const arrays = Array.from({ length: 3000 }, (_, i) => smallBytes(1 + (i % 70)));
    for (const a of arrays) {
      assert.equal(a.byteOffset % 8, 0);
      assert.ok(a.every((x) => x === 0));
      a.fill(0xff);
    }
    for (let i = 0; i < arrays.length; i++) assert.equal(arrays[i].byteLength, 1 + (i % 70));
  });
});
