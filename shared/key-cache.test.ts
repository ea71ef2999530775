/** The key-list cache: a bounded LRU by hash and length; the hash is XXH64 of the keys' binary64 bytes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CACHE_MIN_KEYS, KeyListCache, keyHashReady, keyListHash } from './key-cache.ts';

test('keeps the most recently used lists within its list and key bounds', () => {
  const c = new KeyListCache<string>(3, 100);
  assert.ok(c.add(1n, 10, 'a'));
  assert.ok(c.add(2n, 10, 'b'));
  assert.ok(c.add(3n, 10, 'c'));
  assert.equal(c.use(1n, 10), 'a'); // 1 is now the most recent: 2 goes first
  c.add(4n, 10, 'd');
  assert.equal(c.use(2n, 10), undefined);
  assert.equal(c.use(1n, 11), undefined, 'a hash with another length is a miss');
  c.add(5n, 85, 'e'); // 10 + 10 + 10 + 85 > 100 keys: the least recent (3, then 1) go
  assert.deepEqual([c.use(3n, 10), c.use(1n, 10), c.use(4n, 10), c.use(5n, 85)], [undefined, undefined, 'd', 'e']);
  assert.equal(c.add(6n, 101, 'f'), false, 'a list above the key bound is never kept');
  c.forget(4n);
  assert.equal(c.use(4n, 10), undefined);
  assert.equal(c.size, 1);
});

test('hashes a key list as XXH64 of its binary64 bytes; short lists are not cached', async () => {
  await keyHashReady;
  assert.equal(keyListHash(new Float64Array(CACHE_MIN_KEYS - 1)), null);
  const keys = Float64Array.from({ length: 100 }, (_, i) => i * 3);
  const h = keyListHash(keys);
  assert.equal(typeof h, 'bigint');
  assert.equal(keyListHash(keys.slice()), h, 'same keys, same hash');
  const other = keys.slice();
  other[50] += 1;
  assert.notEqual(keyListHash(other), h);
  // The reference value PROTOCOL.md §5.2 gives other implementations: keys 0, 3, 6, …, 297.
  assert.equal(h, 0x0a888fafaa7270f6n);
});
