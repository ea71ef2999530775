/** Key list validation, range helpers and binary search (property tests against linear scans). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TabshardError } from './errors.ts';
import {
  checkKey,
  checkRange,
  checkSortedKeys,
  intersectRanges,
  lowerBound,
  MAX_KEY_SPACE,
  rangeContains,
  rangeLength,
  upperBound,
} from './keys.ts';

const isCode = (code: string) => (e: unknown) => e instanceof TabshardError && e.code === code;

test('checkSortedKeys accepts sorted unique integer keys in [0, K)', () => {
  checkSortedKeys(new Float64Array(0), 1);
  checkSortedKeys(Float64Array.of(0), 1);
  checkSortedKeys(Float64Array.of(0, 1, 5, 2 ** 52 - 1), MAX_KEY_SPACE);
});

test('checkSortedKeys rejects unsorted, duplicate and out-of-range keys', () => {
  assert.throws(() => checkSortedKeys(Float64Array.of(1, 0), 10), isCode('TS_ERR_KEYS_UNSORTED'));
  assert.throws(() => checkSortedKeys(Float64Array.of(1, 1), 10), isCode('TS_ERR_KEYS_UNSORTED'));
  for (const bad of [-1, 10, 2.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
    assert.throws(() => checkSortedKeys(Float64Array.of(0, bad), 10), isCode('TS_ERR_KEY_OUT_OF_RANGE'), String(bad));
  }
  assert.throws(() => checkSortedKeys(Float64Array.of(0), 0), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkSortedKeys(Float64Array.of(0), 2 ** 52 + 2), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkSortedKeys(Float64Array.of(0), 1.5), isCode('TS_ERR_INVALID_ARGUMENT'));
});

test('checkKey and checkRange', () => {
  checkKey(0, 1);
  assert.throws(() => checkKey(1, 1), isCode('TS_ERR_KEY_OUT_OF_RANGE'));
  assert.throws(() => checkKey(Number.NaN, 1), isCode('TS_ERR_KEY_OUT_OF_RANGE'));
  checkRange(0, 10, 10);
  checkRange(3, 3, 10);
  assert.throws(() => checkRange(3, 3, 10, true), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkRange(4, 3, 10), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkRange(0, 11, 10), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkRange(-1, 3, 10), isCode('TS_ERR_INVALID_ARGUMENT'));
  assert.throws(() => checkRange(0.5, 3, 10), isCode('TS_ERR_INVALID_ARGUMENT'));
});

test('range helpers', () => {
  assert.equal(rangeLength({ begin: 3, end: 10 }), 7);
  assert.equal(rangeLength({ begin: 3, end: 3 }), 0);
  assert.equal(rangeLength({ begin: 5, end: 3 }), 0);
  assert.deepEqual(intersectRanges({ begin: 0, end: 10 }, { begin: 5, end: 20 }), { begin: 5, end: 10 });
  assert.deepEqual(intersectRanges({ begin: 5, end: 20 }, { begin: 0, end: 10 }), { begin: 5, end: 10 });
  assert.equal(intersectRanges({ begin: 0, end: 5 }, { begin: 5, end: 10 }), null);
  assert.ok(rangeContains({ begin: 2, end: 4 }, 3));
  assert.ok(!rangeContains({ begin: 2, end: 4 }, 4));
});

test('lowerBound / upperBound match a linear scan (property, fixed seed)', () => {
  const sorted = fc
    .uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 60 })
    .map((a) => Float64Array.from(a).sort());
  fc.assert(
    fc.property(sorted, fc.integer({ min: -5, max: 205 }), fc.nat(), fc.nat(), (keys, x, a, b) => {
      const lo = keys.length ? a % (keys.length + 1) : 0;
      const hi = lo + (keys.length ? b % (keys.length - lo + 1) : 0);
      let lb = lo;
      while (lb < hi && keys[lb] < x) lb++;
      let ub = lo;
      while (ub < hi && keys[ub] <= x) ub++;
      assert.equal(lowerBound(keys, x, lo, hi), lb);
      assert.equal(upperBound(keys, x, lo, hi), ub);
      assert.equal(lowerBound(keys, x), lowerBound(keys, x, 0, keys.length));
    }),
    { seed: 52, numRuns: 500 },
  );
});
