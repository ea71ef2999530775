/**
 * Key lists and key ranges. Keys are non-negative integers below 2^52, held exactly in a
 * `Float64Array`, sorted ascending and unique. A table's key space is [0, K) with 1 <= K <= 2^52;
 * a range is the half-open interval [begin, end). Everything here is a plain loop, no allocation.
 */
import { TabshardError } from './errors.ts';

/** The largest key space a table may have: keys are exact integers below 2^52. */
export const MAX_KEY_SPACE = 2 ** 52;

/** A contiguous half-open key range [begin, end). */
export interface KeyRange {
  begin: number;
  end: number;
}

/** True when `k` is an integer in [0, 2^52] (a valid key, key space or range bound). */
function isKeyInt(k: number): boolean {
  return k >= 0 && k <= MAX_KEY_SPACE && Math.floor(k) === k;
}

/** Throws TS_ERR_INVALID_ARGUMENT unless `keySpace` is an integer in [1, 2^52]. */
export function checkKeySpace(keySpace: number): void {
  if (typeof keySpace !== 'number' || !isKeyInt(keySpace) || keySpace < 1) {
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `key space must be an integer in [1, 2^52], got ${keySpace}`);
  }
}

/**
 * Checks a key list: every key an integer in [0, keySpace) (TS_ERR_KEY_OUT_OF_RANGE, also for
 * NaN, negatives and fractions), strictly ascending (TS_ERR_KEYS_UNSORTED). Reports the first bad index.
 */
export function checkSortedKeys(keys: Float64Array, keySpace: number): void {
  checkKeySpace(keySpace);
  const i = firstBadKey(keys, keySpace);
  if (i < 0) return;
  const k = keys[i];
  if (!(k >= 0 && k < keySpace && Math.floor(k) === k)) {
    throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `keys[${i}] = ${k} is not an integer in [0, ${keySpace})`);
  }
  throw new TabshardError('TS_ERR_KEYS_UNSORTED', `keys[${i}] = ${k} follows ${keys[i - 1]}`);
}

/** Index of the first key that is not an integer above its predecessor and below K, or -1 (hot loop). */
function firstBadKey(keys: Float64Array, keySpace: number): number {
  let prev = -1;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    // Written so that NaN fails the test.
    if (!(k > prev && k < keySpace && Math.floor(k) === k)) return i;
    prev = k;
  }
  return -1;
}

/** Throws TS_ERR_KEY_OUT_OF_RANGE unless `key` is an integer in [0, keySpace). */
export function checkKey(key: number, keySpace: number): void {
  if (!(key >= 0 && key < keySpace && Math.floor(key) === key)) {
    throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `key ${key} is not an integer in [0, ${keySpace})`);
  }
}

/**
 * Throws TS_ERR_INVALID_ARGUMENT unless [begin, end) is a range of integers with
 * 0 <= begin <= end <= keySpace (begin < end as well when `nonEmpty`).
 */
export function checkRange(begin: number, end: number, keySpace: number, nonEmpty = false): void {
  if (
    typeof begin !== 'number' ||
    typeof end !== 'number' ||
    !isKeyInt(begin) ||
    !isKeyInt(end) ||
    end > keySpace ||
    begin > end ||
    (nonEmpty && begin === end)
  ) {
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      `range [${begin}, ${end}) is not a ${nonEmpty ? 'non-empty ' : ''}integer range within [0, ${keySpace})`,
    );
  }
}

/** Number of keys in [begin, end) (0 for empty or inverted ranges). */
export function rangeLength(r: KeyRange): number {
  return r.end > r.begin ? r.end - r.begin : 0;
}

/** The intersection of two ranges, or null when it is empty. */
export function intersectRanges(a: KeyRange, b: KeyRange): KeyRange | null {
  const begin = Math.max(a.begin, b.begin);
  const end = Math.min(a.end, b.end);
  return begin < end ? { begin, end } : null;
}

/** True when `key` lies in [r.begin, r.end). */
export function rangeContains(r: KeyRange, key: number): boolean {
  return key >= r.begin && key < r.end;
}

/** First index i in [lo, hi) with keys[i] >= x, or hi when there is none (keys sorted ascending). */
export function lowerBound(keys: Float64Array, x: number, lo = 0, hi: number = keys.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Smallest j ≥ from with a[j] ≥ k (a.length if none): galloping from `from`, then binary search. */
export function gallop(a: Float64Array, from: number, k: number): number {
  const n = a.length;
  if (from >= n || a[from] >= k) return from;
  let lo = from; // a[lo] < k
  let step = 1;
  let hi = from + 1;
  while (hi < n && a[hi] < k) {
    lo = hi;
    step *= 2;
    hi = from + step;
  }
  if (hi > n) hi = n;
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >>> 1);
    if (a[mid] < k) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** First index i in [lo, hi) with keys[i] > x, or hi when there is none (keys sorted ascending). */
export function upperBound(keys: Float64Array, x: number, lo = 0, hi: number = keys.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
