/**
 * MurmurHash3 x86_32 against published reference values:
 * - SMHasher's own verification value for MurmurHash3_x86_32, 0xB0F57EE3
 *   (https://github.com/aappleby/smhasher, src/main.cpp, `VerificationTest`);
 * - string vectors widely published for the x86_32 variant (e.g. the test-vector answer at
 *   https://stackoverflow.com/questions/14747343/murmurhash3-test-vectors, and Python `mmh3` docs);
 * - every value here was also cross-checked against the reference C code compiled locally.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashString, murmur3_32 } from './hash.ts';

test('SMHasher verification value (keys {0}, {0,1}, ... with seed 256-i) is 0xB0F57EE3', () => {
  const key = new Uint8Array(256);
  const hashes = new Uint8Array(256 * 4);
  const view = new DataView(hashes.buffer);
  for (let i = 0; i < 256; i++) {
    key[i] = i;
    view.setUint32(i * 4, murmur3_32(key.subarray(0, i), 256 - i), true);
  }
  assert.equal(murmur3_32(hashes, 0), 0xb0f57ee3);
});

test('published string vectors', () => {
  const vectors: [string, number, number][] = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['hello', 0, 0x248bfa47],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['Hello, world!', 1234, 0xfaf6cdb3],
    ['Hello, world!', 0, 0xc0363e43],
  ];
  for (const [s, seed, want] of vectors) assert.equal(hashString(s, seed), want, `${JSON.stringify(s)} seed ${seed}`);
});

test('tails of 1, 2 and 3 bytes and UTF-8 input (checked against the reference C code)', () => {
  assert.equal(hashString('a'), 0x3c2569b2);
  assert.equal(hashString('ab'), 0x9bbfd75f);
  assert.equal(hashString('abc'), 0xb3dd93fa);
  assert.equal(hashString('abcd'), 0x43ed676a);
  assert.equal(hashString('héllo wörld ✓'), 0x0e375ad8);
  assert.equal(hashString('server-0#17'), 0x93b8b6f4);
});

test('results are unsigned 32-bit integers and seeds are taken modulo 2^32', () => {
  for (let i = 0; i < 1000; i++) {
    const h = hashString(`node#${i}`);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 4294967296);
  }
  assert.equal(hashString('hello', -1), hashString('hello', 0xffffffff));
});
