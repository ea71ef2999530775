/**
 * Examples held as one CSR matrix over global keys (typed arrays, no per-example objects), and
 * the cut of a range of its rows into a shard (shared/apps/shard.ts): the range's working set of
 * keys, and each non-zero's key rewritten as its index in that working set. For generators of
 * millions of examples, where buildShard's row objects would cost more than the data.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';

/** Rows i's keys (< 2^32, sorted, unique within the row) and values are [rowPtr[i], rowPtr[i+1]). */
export interface CsrRows {
  keys: Uint32Array;
  val: Float32Array;
  rowPtr: Uint32Array;
}

/** Fill of a scratch map's unused entries (see buildCsrShard). */
export const SCRATCH_FREE = 0xffffffff;
/** The largest scratch map buildCsrShard takes (keys and ids share a float64 when sorting). */
export const SCRATCH_MAX = 2 ** 26;
const ID_SPAN = 2 ** 27;

/**
 * The shard of rows [from, to) of `rows` with their labels, numbered `index`. `scratch`, when
 * given, must be longer than every key, at most SCRATCH_MAX long, and filled with SCRATCH_FREE (it
 * is left so): a dense key → index map that saves sorting every non-zero and a binary search per
 * non-zero.
 */
export function buildCsrShard(
  index: number,
  rows: CsrRows,
  labels: Uint8Array,
  from: number,
  to: number,
  scratch?: Uint32Array,
): DecodedShard {
  const a = rows.rowPtr[from];
  const b = rows.rowPtr[to];
  const col = new Uint32Array(b - a);
  if (scratch && (scratch.length > SCRATCH_MAX || b - a >= ID_SPAN))
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'buildCsrShard: scratch map or shard too large');
  let keys: Float64Array;
  if (scratch) {
    // One pass over the big map: ids in order of first appearance; then sort the few distinct
    // keys (packed with their id: key < 2^26, id < 2^27, exact in a float64) and renumber.
    const seen: number[] = [];
    for (let j = a; j < b; j++) {
      const key = rows.keys[j];
      let id = scratch[key];
      if (id === SCRATCH_FREE) {
        id = seen.length;
        scratch[key] = id;
        seen.push(key);
      }
      col[j - a] = id;
    }
    const packed = Float64Array.from(seen, (key, id) => key * ID_SPAN + id).sort();
    keys = new Float64Array(seen.length);
    const rank = new Uint32Array(seen.length);
    for (let r = 0; r < packed.length; r++) {
      const id = packed[r] % ID_SPAN;
      keys[r] = (packed[r] - id) / ID_SPAN;
      rank[id] = r;
    }
    for (let j = 0; j < col.length; j++) col[j] = rank[col[j]];
    for (const key of seen) scratch[key] = SCRATCH_FREE;
  } else {
    const sorted = rows.keys.slice(a, b).sort();
    let k = 0;
    for (let i = 0; i < sorted.length; i++) if (k === 0 || sorted[i] !== sorted[k - 1]) sorted[k++] = sorted[i];
    keys = Float64Array.from(sorted.subarray(0, k));
    for (let j = a; j < b; j++) col[j - a] = lowerBound(sorted, k, rows.keys[j]);
  }
  const rowPtr = new Uint32Array(to - from + 1);
  for (let i = from; i <= to; i++) rowPtr[i - from] = rows.rowPtr[i] - a;
  return { index, keys, rowPtr, col, val: rows.val.slice(a, b), labels: labels.slice(from, to) };
}

/** First index in sorted[0, n) whose value is ≥ x. */
function lowerBound(sorted: Uint32Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
