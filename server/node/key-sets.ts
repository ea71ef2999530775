/**
 * Key sets of a node (PROTOCOL.md §6.2 KEYSET) and the containment checks of a push against
 * them: a sorted list or merged ranges, walked by galloping search so a 13k-key sub-list of a
 * 13k-key set is checked in tens of µs, with no allocation per frame.
 */

import { gallop } from '../../shared/keys.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';

export /** A stored key set: a sorted unique list, or ranges (begin, end pairs; sorted, disjoint, not adjacent). */
type KeySet = { list: Float64Array; bounds: null } | { list: null; bounds: Float64Array };

export function setSize(s: KeySet): number {
  if (s.list !== null) return s.list.length;
  let n = 0;
  for (let i = 0; i < s.bounds.length; i += 2) n += s.bounds[i + 1] - s.bounds[i];
  return n;
}

/** Ranges (sorted, disjoint; empty ones allowed) with adjacent ones merged and empty ones dropped, as a new array. */
export function mergeRanges(b: Float64Array): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) {
    if (b[i + 1] <= b[i]) continue;
    if (out.length > 0 && out[out.length - 1] === b[i]) out[out.length - 1] = b[i + 1];
    else out.push(b[i], b[i + 1]);
  }
  return Float64Array.from(out);
}

/** Whether every key of `keys` is in [begin, end). */
export function withinRange(begin: number, end: number, keys: KvKeys): boolean {
  if (keys.kind === 'range') return keys.begin === keys.end || (keys.begin >= begin && keys.end <= end);
  if (keys.kind === 'list') {
    const k = keys.keys;
    return k.length === 0 || (k[0] >= begin && k[k.length - 1] < end);
  }
  const b = keys.bounds;
  return b.length === 0 || (b[0] >= begin && b[b.length - 1] <= end);
}

/** Whether the sorted unique list `set` holds every key of `keys` (a galloping walk; no allocation). */
export function listHolds(set: Float64Array, keys: KvKeys): boolean {
  const n = set.length;
  if (keys.kind === 'list') {
    const k = keys.keys;
    if (k.length > n) return false;
    let j = 0;
    for (let i = 0; i < k.length; i++) {
      const x = k[i];
      if (j >= n) return false;
      if (set[j] !== x) {
        // A few steps on, then gallop: a sub-list of the set skips few of its keys.
        const stop = Math.min(j + 8, n);
        while (j < stop && set[j] < x) j++;
        if (j === stop && j < n && set[j] < x) j = gallop(set, j, x);
        if (j >= n || set[j] !== x) return false;
      }
      j++;
    }
    return true;
  }
  if (keys.kind === 'range') return rangeInList(set, 0, keys.begin, keys.end) >= 0;
  const b = keys.bounds;
  let j = 0;
  for (let i = 0; i < b.length; i += 2) {
    j = rangeInList(set, j, b[i], b[i + 1]);
    if (j < 0) return false;
  }
  return true;
}

/**
 * Whether `set` (from index `from` on) holds every key of [begin, end): the entry at begin's
 * place and the one end − begin − 1 further on must be begin and end − 1 (keys are unique
 * integers). Returns the index after the range's last key, or -1.
 */
function rangeInList(set: Float64Array, from: number, begin: number, end: number): number {
  if (end <= begin) return from;
  const j = gallop(set, from, begin);
  const last = j + (end - begin - 1);
  return last < set.length && set[j] === begin && set[last] === end - 1 ? last + 1 : -1;
}

/** Smallest range index r ≥ from whose end is above k (the range count if none). */
function gallopEnds(b: Float64Array, from: number, k: number): number {
  const n = b.length >> 1;
  if (from >= n || b[2 * from + 1] > k) return from;
  let lo = from;
  let step = 1;
  let hi = from + 1;
  while (hi < n && b[2 * hi + 1] <= k) {
    lo = hi;
    step *= 2;
    hi = from + step;
  }
  if (hi > n) hi = n;
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >>> 1);
    if (b[2 * mid + 1] <= k) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Whether ranges `bounds` (sorted, disjoint, adjacent ones merged) hold every key of `keys`. */
export function rangesHold(bounds: Float64Array, keys: KvKeys): boolean {
  const n = bounds.length >> 1;
  let r = 0;
  if (keys.kind === 'list') {
    const k = keys.keys;
    for (let i = 0; i < k.length; i++) {
      r = gallopEnds(bounds, r, k[i]);
      if (r >= n || bounds[2 * r] > k[i]) return false;
    }
    return true;
  }
  if (keys.kind === 'range') return rangeInRanges(bounds, 0, keys.begin, keys.end) >= 0;
  const b = keys.bounds;
  for (let i = 0; i < b.length; i += 2) {
    r = rangeInRanges(bounds, r, b[i], b[i + 1]);
    if (r < 0) return false;
  }
  return true;
}

/** The index of the range of `bounds` (from `from` on) that holds all of [begin, end), or -1. */
function rangeInRanges(bounds: Float64Array, from: number, begin: number, end: number): number {
  if (end <= begin) return from;
  const r = gallopEnds(bounds, from, begin);
  return r < bounds.length >> 1 && bounds[2 * r] <= begin && end <= bounds[2 * r + 1] ? r : -1;
}
