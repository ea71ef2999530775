/**
 * Slicing a request by the ring (PROTOCOL.md §5): the keys of one push, pull or subscription are
 * cut into one part per owning node, however many of the node's ranges they span — one frame per
 * node, never one per range. A part carries its keys as they go on the wire (a sub-list, a
 * gathered list, one range or several ranges) and the runs of the request they came from, so
 * values are gathered for a push (as zero-copy views) and scattered back from a pull reply.
 * A part that must go elsewhere after a ring change is cut again (`resliceKeys`, `nestRuns`).
 * Used by the worker library and by the server manager's own reads.
 */
import type { KvKeys } from './protocol/kv.ts';
import type { Ring, TableShape } from './ring.ts';

/** Keys of a request: a sorted unique key list, or a contiguous range [begin, end). */
export type Keys = Float64Array | { begin: number; end: number };

/** A stretch of a request: `n` keys starting at key offset `at`. */
export interface Run {
  readonly at: number;
  readonly n: number;
}

/** The part of a request one node owns. */
export interface NodePart {
  readonly owner: string;
  /** The part's keys on the wire: its runs' keys in request order. */
  readonly keys: KvKeys;
  /** Where the part's keys sit in the request, in order (never two adjacent runs). */
  readonly runs: readonly Run[];
  /** Keys in the part (the runs' total). */
  readonly n: number;
}

/**
 * The parts of `keys` per owner under `ring`, in the order of each owner's first key. A key list
 * must be sorted and unique (only its first and last keys are range-checked here); a range is
 * checked against the key space by the ring. A list that spans several of a node's ranges is
 * gathered into one list (a copy); a single run is a view of `keys`.
 */
export function sliceByNode(ring: Ring, table: TableShape, keys: Keys): NodePart[] {
  // (No named closures here: under tsx each would cost a defineProperty per call on this hot path.)
  if (keys instanceof Float64Array) {
    const slices = ring.sliceKeys(table, keys);
    if (slices.length === 1)
      return [
        { owner: slices[0].owner, runs: [{ at: 0, n: keys.length }], n: keys.length, keys: { kind: 'list', keys } },
      ];
    const byOwner = new Map<string, Run[]>();
    for (const s of slices) addRun(byOwner, s.owner, s.begin, s.end - s.begin);
    return [...byOwner].map(([owner, runs]) => ({ owner, runs, n: total(runs), keys: listOf(keys, runs) }));
  }
  const pieces = ring.sliceRange(table, keys.begin, keys.end);
  if (pieces.length === 1) {
    const { owner, begin, end } = pieces[0];
    return [
      {
        owner,
        runs: [{ at: begin - keys.begin, n: end - begin }],
        n: end - begin,
        keys: { kind: 'range', begin, end },
      },
    ];
  }
  const byOwner = new Map<string, Run[]>();
  for (const r of pieces) addRun(byOwner, r.owner, r.begin - keys.begin, r.end - r.begin);
  return [...byOwner].map(([owner, runs]) => ({ owner, runs, n: total(runs), keys: rangesOf(keys.begin, runs) }));
}

/**
 * Re-slices the wire keys of one part (a list, a range or ranges: KvKeys, never a cached hash)
 * under `ring`, for a part that must go to other nodes (its node refused it, TS_ERR_NOT_OWNER, or
 * left the ring): one NodePart per owner under `ring`, in the order of each owner's first key,
 * whose runs index the PART's own key order (0 … n − 1 over the part's keys), not the request's.
 * `nestRuns(part.runs, piece.runs)` carries a piece back into the request, so that `partValues`
 * gathers its values as views of the same values the part's were views of, and `scatterPart`
 * puts its reply where the part's would have gone. The keys must be a valid part (a list sorted
 * and unique; ranges ascending and disjoint).
 */
export function resliceKeys(ring: Ring, table: TableShape, keys: KvKeys): NodePart[] {
  if (keys.kind === 'list') return keys.keys.length === 0 ? [] : sliceByNode(ring, table, keys.keys);
  if (keys.kind === 'range')
    return keys.end === keys.begin ? [] : sliceByNode(ring, table, { begin: keys.begin, end: keys.end });
  const byOwner = new Map<string, { runs: Run[]; bounds: number[] }>();
  const b = keys.bounds;
  for (let i = 0, base = 0; i < b.length; base += b[i + 1] - b[i], i += 2) {
    for (const r of ring.sliceRange(table, b[i], b[i + 1])) {
      const at = base + r.begin - b[i];
      const n = r.end - r.begin;
      let o = byOwner.get(r.owner);
      if (o === undefined) {
        o = { runs: [], bounds: [] };
        byOwner.set(r.owner, o);
      }
      const last = o.runs[o.runs.length - 1];
      if (last !== undefined && last.at + last.n === at) o.runs[o.runs.length - 1] = { at: last.at, n: last.n + n };
      else o.runs.push({ at, n });
      if (o.bounds.length > 0 && o.bounds[o.bounds.length - 1] === r.begin) o.bounds[o.bounds.length - 1] = r.end;
      else o.bounds.push(r.begin, r.end);
    }
  }
  return [...byOwner].map(([owner, { runs, bounds }]) => ({
    owner,
    runs,
    n: total(runs),
    keys:
      bounds.length === 2
        ? { kind: 'range', begin: bounds[0], end: bounds[1] }
        : { kind: 'ranges', bounds: Float64Array.from(bounds) },
  }));
}

/**
 * Runs of a part's key order (`inner`, ascending, as `resliceKeys` gives them) carried into the
 * request the part came from (whose keys `outer`, the part's runs, index): the same keys, as
 * runs of the request's key order.
 */
export function nestRuns(outer: readonly Run[], inner: readonly Run[]): Run[] {
  const out: Run[] = [];
  let j = 0;
  let base = 0; // offset in the part of outer[j]'s first key
  for (const r of inner) {
    let pos = r.at;
    let left = r.n;
    while (left > 0) {
      while (base + outer[j].n <= pos) base += outer[j++].n;
      const k = Math.min(left, base + outer[j].n - pos);
      const at = outer[j].at + pos - base;
      const last = out[out.length - 1];
      if (last !== undefined && last.at + last.n === at) out[out.length - 1] = { at: last.at, n: last.n + k };
      else out.push({ at, n: k });
      pos += k;
      left -= k;
    }
  }
  return out;
}

function addRun(byOwner: Map<string, Run[]>, owner: string, at: number, n: number): void {
  const runs = byOwner.get(owner);
  if (runs) runs.push({ at, n });
  else byOwner.set(owner, [{ at, n }]);
}

/** Values of a part gathered from a request's values (d per key): views, never copies. */
export function partValues(values: Float32Array, part: NodePart, d: number): Float32Array[] {
  return part.runs.map((r) => values.subarray(r.at * d, (r.at + r.n) * d));
}

/**
 * Copies a part's reply values (d per key, the part's key order) into the request's `out`.
 * The caller has checked that `reply` holds exactly `part.n * d` floats.
 */
export function scatterPart(reply: Float32Array, part: NodePart, d: number, out: Float32Array): void {
  let off = 0;
  for (const r of part.runs) {
    const len = r.n * d;
    out.set(len === reply.length ? reply : reply.subarray(off, off + len), r.at * d);
    off += len;
  }
}

function total(runs: readonly Run[]): number {
  let n = 0;
  for (const r of runs) n += r.n;
  return n;
}

function listOf(keys: Float64Array, runs: readonly Run[]): KvKeys {
  if (runs.length === 1) return { kind: 'list', keys: keys.subarray(runs[0].at, runs[0].at + runs[0].n) };
  const out = new Float64Array(total(runs));
  let o = 0;
  for (const r of runs) {
    // A short run (a few keys per range with many virtual nodes) by a loop: subarray allocates a view.
    if (r.n <= 32) for (let k = 0; k < r.n; k++) out[o + k] = keys[r.at + k];
    else out.set(keys.subarray(r.at, r.at + r.n), o);
    o += r.n;
  }
  return { kind: 'list', keys: out };
}

function rangesOf(begin: number, runs: readonly Run[]): KvKeys {
  if (runs.length === 1) return { kind: 'range', begin: begin + runs[0].at, end: begin + runs[0].at + runs[0].n };
  const bounds = new Float64Array(2 * runs.length);
  for (let i = 0; i < runs.length; i++) {
    bounds[2 * i] = begin + runs[i].at;
    bounds[2 * i + 1] = begin + runs[i].at + runs[i].n;
  }
  return { kind: 'ranges', bounds };
}
