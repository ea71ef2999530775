/**
 * Which keys of a request go to which node next along their replica chains (docs/architecture.md
 * §6): a master forwards each key to the node after it in that key's chain, a replica to the node
 * after itself. The ring's chain layout (Ring.chainRanges) is walked once per request.
 */
import { lowerBound, upperBound } from '../../shared/keys.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import type { ChainLayout, ChainRange } from '../../shared/ring.ts';

/** Where `self` forwards a range's keys: the chain member after it, or null (none, or `self` not in it). */
export function nextInChain(r: ChainRange, self: string): string | null {
  const i = r.chain.indexOf(self);
  return i < 0 || i + 1 >= r.chain.length ? null : r.chain[i + 1];
}

/** Whether `self` heads every chain the keys fall in (it masters all of them). */
export function mastersAll(layout: ChainLayout, self: string, keys: KvKeys): boolean {
  let all = true;
  forEachPiece(layout, keys, (r) => {
    if (r.chain[0] !== self) all = false;
  });
  return all;
}

/**
 * The keys grouped by the node `self` forwards them to, as fresh key segments (copies: the
 * request's keys may live in a scratch array). Keys with no next node are left out.
 */
export function groupByNext(layout: ChainLayout, self: string, keys: KvKeys): Map<string, KvKeys> {
  const lists = new Map<string, number[][]>();
  const bounds = new Map<string, number[]>();
  if (keys.kind === 'list') {
    const k = keys.keys;
    const { ranges, begins } = layout;
    for (let i = 0; i < k.length; ) {
      const r = Math.max(0, upperBound(begins, k[i]) - 1);
      const j = lowerBound(k, ranges[r].end, i + 1);
      const next = nextInChain(ranges[r], self);
      if (next !== null) {
        const runs = lists.get(next);
        if (runs) runs.push([i, j]);
        else lists.set(next, [[i, j]]);
      }
      i = j;
    }
    const out = new Map<string, KvKeys>();
    for (const [node, runs] of lists) {
      let n = 0;
      for (const [a, b] of runs) n += b - a;
      const sub = new Float64Array(n);
      let o = 0;
      for (const [a, b] of runs) {
        sub.set(k.subarray(a, b), o);
        o += b - a;
      }
      out.set(node, { kind: 'list', keys: sub });
    }
    return out;
  }
  forEachPiece(layout, keys, (r, begin, end) => {
    const next = nextInChain(r, self);
    if (next === null) return;
    const b = bounds.get(next);
    if (b === undefined) bounds.set(next, [begin, end]);
    else if (b[b.length - 1] === begin) b[b.length - 1] = end;
    else b.push(begin, end);
  });
  const out = new Map<string, KvKeys>();
  for (const [node, b] of bounds)
    out.set(
      node,
      b.length === 2 ? { kind: 'range', begin: b[0], end: b[1] } : { kind: 'ranges', bounds: Float64Array.from(b) },
    );
  return out;
}

/** Calls `fn(range, begin, end)` for every piece of a chain range the keys touch (a list: per run of keys). */
function forEachPiece(
  layout: ChainLayout,
  keys: KvKeys,
  fn: (r: ChainRange, begin: number, end: number) => void,
): void {
  const { ranges, begins } = layout;
  if (keys.kind === 'list') {
    const k = keys.keys;
    for (let i = 0; i < k.length; ) {
      const r = Math.max(0, upperBound(begins, k[i]) - 1);
      const j = lowerBound(k, ranges[r].end, i + 1);
      fn(ranges[r], k[i], k[j - 1] + 1);
      i = j;
    }
    return;
  }
  const spans = keys.kind === 'range' ? [keys.begin, keys.end] : keys.bounds;
  for (let s = 0; s < spans.length; s += 2) {
    const begin = spans[s];
    const end = spans[s + 1];
    for (let r = Math.max(0, upperBound(begins, begin) - 1); r < ranges.length && ranges[r].begin < end; r++)
      fn(ranges[r], Math.max(begin, ranges[r].begin), Math.min(end, ranges[r].end));
  }
}

/**
 * The pieces of [0, keySpace) where the chains of two layouts differ by members `self` must copy
 * to: for each piece `self` heads under `next`, the members of its new chain absent from its old
 * chain. Returned per target node, pieces in key order, adjacent ones merged.
 */
export function copiesOwed(
  prev: ChainLayout | null,
  next: ChainLayout,
  self: string,
): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  const add = (node: string, b: number, e: number): void => {
    const list = out.get(node);
    if (list === undefined) out.set(node, [[b, e]]);
    else if (list[list.length - 1][1] === b) list[list.length - 1][1] = e;
    else list.push([b, e]);
  };
  for (const r of next.ranges) {
    if (r.chain[0] !== self || r.chain.length < 2) continue;
    if (prev === null) continue; // a first ring: nothing is held yet, nothing to copy
    for (
      let p = Math.max(0, upperBound(prev.begins, r.begin) - 1);
      p < prev.ranges.length && prev.ranges[p].begin < r.end;
      p++
    ) {
      const old = prev.ranges[p];
      const b = Math.max(r.begin, old.begin);
      const e = Math.min(r.end, old.end);
      for (let m = 1; m < r.chain.length; m++) if (!old.chain.includes(r.chain[m])) add(r.chain[m], b, e);
    }
  }
  return out;
}
