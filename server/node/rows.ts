/**
 * Rows: a table's full per-key state — its values and its updater's per-value state arrays
 * (AdaGrad / FTRL / Adam accumulators) — read and written as they are, without running the
 * updater. Replication, key-range migration and checkpoints all move table state this way.
 *
 * Layout (normative). For n keys (sorted, unique), d floats per key and S = updater.stateSlots,
 * the rows are one Float32Array of n*d*(1+S) floats, slot-major: floats [0, n*d) are the values
 * (key order, d per key), then [n*d, 2*n*d) state slot 0, [2*n*d, 3*n*d) state slot 1, and so
 * on; so element j of the i-th key in slot s (s = 0 for values, 1 + t for state slot t) is at
 * s*n*d + i*d + j. A key never written reads as the table's initial value (init.ts) and its
 * state as `stateInit[t]`.
 */
import { lowerBound } from '../../shared/keys.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';

/** Keys per chunk of an export unless told otherwise. */
export const EXPORT_KEYS = 65536;

/** A piece of an export: keys in key order and their rows (a copy, see the layout above). */
export interface RowChunk {
  keys: KvKeys;
  rows: Float32Array;
}

/** Floats in the rows of `n` keys of `d` floats with `slots` state slots. */
export function rowsLength(n: number, d: number, slots: number): number {
  return n * d * (1 + slots);
}

/**
 * Copies `count` keys' worth (count*d floats per slot) from position `p` of the slot arrays
 * (values first, then state) into `rows`, slot s at rows[s*stride + at ..].
 */
export function rowsOut(
  slots: readonly Float32Array[],
  p: number,
  count: number,
  d: number,
  rows: Float32Array,
  at: number,
  stride: number,
): void {
  const len = count * d;
  for (let s = 0; s < slots.length; s++) {
    const src = slots[s];
    const from = p * d;
    const to = s * stride + at;
    // A few floats (one key of a scattered read) by a loop: subarray + set would allocate per key.
    if (len <= SHORT_COPY) for (let k = 0; k < len; k++) rows[to + k] = src[from + k];
    else rows.set(src.subarray(from, from + len), to);
  }
}

/** Copies of up to this many floats go by a plain loop (rowsOut, rowsIn). */
const SHORT_COPY = 32;

/** The inverse of rowsOut: sets `count` keys of the slot arrays at position `p` from `rows`. */
export function rowsIn(
  rows: Float32Array,
  at: number,
  stride: number,
  count: number,
  d: number,
  slots: readonly Float32Array[],
  p: number,
): void {
  const len = count * d;
  for (let s = 0; s < slots.length; s++) {
    const dst = slots[s];
    const from = s * stride + at;
    const to = p * d;
    if (len <= SHORT_COPY) for (let k = 0; k < len; k++) dst[to + k] = rows[from + k];
    else dst.set(rows.subarray(from, from + len), to);
  }
}

/** Sorted stored keys with their values and state arrays (d floats per key in each): a sparse block. */
export interface KeyedRows {
  keys: Float64Array;
  values: Float32Array;
  state: Float32Array[];
}

/**
 * The stored keys in [begin, end) of `blocks` (in key order, disjoint) with copies of their
 * rows, in chunks of at most `maxKeys` keys.
 */
export function exportBlocks(
  blocks: readonly KeyedRows[],
  begin: number,
  end: number,
  maxKeys: number,
  d: number,
): RowChunk[] {
  const segs: Array<{ blk: KeyedRows; a: number; e: number }> = [];
  let rest = 0;
  for (const blk of blocks) {
    const a = lowerBound(blk.keys, begin);
    const e = lowerBound(blk.keys, end, a);
    if (e > a) segs.push({ blk, a, e });
    rest += e - a;
  }
  const chunks: RowChunk[] = [];
  let si = 0;
  let p = segs.length > 0 ? segs[0].a : 0;
  while (rest > 0) {
    const m = Math.min(maxKeys, rest);
    const keys = new Float64Array(m);
    const rows = new Float32Array(rowsLength(m, d, segs[0].blk.state.length));
    for (let w = 0; w < m; ) {
      const { blk, e } = segs[si];
      const take = Math.min(m - w, e - p);
      keys.set(blk.keys.subarray(p, p + take), w);
      rowsOut([blk.values, ...blk.state], p, take, d, rows, w * d, m * d);
      w += take;
      p += take;
      if (p === e && ++si < segs.length) p = segs[si].a;
    }
    chunks.push({ keys: { kind: 'list', keys }, rows });
    rest -= m;
  }
  return chunks;
}
