/**
 * Slicing a request by the ring (PROTOCOL.md §5): the keys of one push, pull or subscription are
 * cut into one part per owning node, however many of the node's ranges they span — one frame per
 * node, never one per range. A part carries its keys as they go on the wire (a sub-list, a
 * gathered list, one range or several ranges) and the runs of the request they came from, so
 * values are gathered for a push (as zero-copy views) and scattered back from a pull reply.
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
    out.set(keys.subarray(r.at, r.at + r.n), o);
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
