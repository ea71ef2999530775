/**
 * Which keys of a request go to which node next along their replica chains (docs/architecture.md
 * §6): a master forwards each key to the node after it in that key's chain, a replica to the node
 * after itself. The ring's chain layout (Ring.chainRanges) is walked once per request.
 */
import { lowerBound, upperBound } from '../../shared/keys.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import type { ChainLayout, ChainRange, Ring, TableShape } from '../../shared/ring.ts';

/** Where `self` forwards a range's keys: the chain member after it, or null (none, or `self` not in it). */
export function nextInChain(r: ChainRange, self: string): string | null {
  const i = r.chain.indexOf(self);
  return i < 0 || i + 1 >= r.chain.length ? null : r.chain[i + 1];
}

/** Whether `self` is in every chain the keys fall in. */
export function inAll(layout: ChainLayout, self: string, keys: KvKeys): boolean {
  let all = true;
  forEachPiece(layout, keys, (r) => {
    if (!r.chain.includes(self)) all = false;
  });
  return all;
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
 * What `self` must copy when the chains change from `prev` to `next`: each member a chain gains
 * gets the piece from the member just before it in the new chain — the node its FORWARDs will
 * come from, so the copy and every later forward reach it in order on one connection — when that
 * member held the piece under `prev` (a master that took over, or a replica a join extends).
 * Returned per target node, pieces in key order, adjacent ones merged. (Two members gained in a
 * row, possible only with k ≥ 2, leave the second to a later copy: it gets none here.)
 */
export function copiesOwed(
  prev: ChainLayout | null,
  next: ChainLayout,
  self: string,
): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  if (prev === null) return out; // a first ring: nothing is held yet, nothing to copy
  for (const [b, e, old, now] of unionPieces(prev, next)) {
    const at = now.indexOf(self);
    if (at < 0 || at + 1 >= now.length || !old.includes(self)) continue;
    const member = now[at + 1];
    if (old.includes(member)) continue;
    const list = out.get(member);
    if (list === undefined) out.set(member, [[b, e]]);
    else if (list[list.length - 1][1] === b) list[list.length - 1][1] = e;
    else list.push([b, e]);
  }
  return out;
}

/**
 * The chains a node follows: its ring's, or while a node joins or drains (a `next` ring is being
 * copied to) the union of both — each range keeps its current master and chain, followed by the
 * members the next ring adds, so they receive a copy and every later forward before the switch.
 */
export class Chains {
  private readonly cache = new Map<string, ChainLayout>();

  private readonly movingCache = new Map<string, ChainLayout>();

  constructor(
    readonly ring: Ring,
    readonly next: Ring | null,
    readonly k: number,
    /** The switch to `next` is about to happen: masters take no new push for keys whose master changes. */
    readonly frozen = false,
  ) {}

  /**
   * Whether a push of `keys` must wait (the layout is frozen and some key's master changes with
   * the switch): refused before anything is applied, so no push is ever applied by a master that
   * then cannot finish it.
   */
  held(t: TableShape, keys: KvKeys): boolean {
    if (!this.frozen || this.next === null) return false;
    const key = `${t.id}:${t.keySpace}:${t.valueLength}`;
    let moving = this.movingCache.get(key);
    if (moving === undefined) {
      const ranges: ChainRange[] = [];
      for (const [b, e, now, then] of unionPieces(this.ring.chainRanges(t, this.k), this.next.chainRanges(t, this.k)))
        ranges.push({ begin: b, end: e, chain: now[0] === then[0] ? [] : ['moving'] });
      moving = { ranges, begins: Float64Array.from(ranges, (r) => r.begin) };
      this.movingCache.set(key, moving);
    }
    let any = false;
    forEachPiece(moving, keys, (r) => {
      if (r.chain.length > 0) any = true;
    });
    return any;
  }

  get version(): number {
    return this.ring.version;
  }

  /** Every node some chain names. */
  get nodes(): readonly string[] {
    return this.next ? [...new Set([...this.ring.nodes, ...this.next.nodes])] : this.ring.nodes;
  }

  of(t: TableShape): ChainLayout {
    if (this.next === null) return this.ring.chainRanges(t, this.k);
    const key = `${t.id}:${t.keySpace}:${t.valueLength}`;
    let l = this.cache.get(key);
    if (l === undefined) {
      l = unionLayout(this.ring.chainRanges(t, this.k), this.next.chainRanges(t, this.k));
      this.cache.set(key, l);
    }
    return l;
  }
}

/** Piecewise union of two layouts over the same key space: `a`'s chain, then `b`'s members it lacks. */
export function unionLayout(a: ChainLayout, b: ChainLayout): ChainLayout {
  const ranges: ChainRange[] = [];
  let i = 0;
  let j = 0;
  let begin = 0;
  const end = a.ranges[a.ranges.length - 1].end;
  while (begin < end) {
    const ra = a.ranges[i];
    const rb = b.ranges[j];
    const stop = Math.min(ra.end, rb.end);
    const chain = [...ra.chain, ...rb.chain.filter((n) => !ra.chain.includes(n))];
    const last = ranges[ranges.length - 1];
    if (last && last.chain.length === chain.length && last.chain.every((n, x) => n === chain[x]))
      ranges[ranges.length - 1] = { begin: last.begin, end: stop, chain: last.chain };
    else ranges.push({ begin, end: stop, chain: Object.freeze(chain) });
    begin = stop;
    if (ra.end === stop) i++;
    if (rb.end === stop) j++;
  }
  const begins = Float64Array.from(ranges, (r) => r.begin);
  return { ranges, begins };
}

/**
 * Pieces of [0, keySpace) `self` held under `prev` (some chain named it) and does not under
 * `next`: what it gave away, to drop once `next` is installed. Adjacent pieces merged.
 */
export function piecesGivenAway(prev: ChainLayout, next: ChainLayout, self: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const both = unionPieces(prev, next);
  for (const [b, e, p, n] of both)
    if (p.includes(self) && !n.includes(self)) {
      const last = out[out.length - 1];
      if (last && last[1] === b) last[1] = e;
      else out.push([b, e]);
    }
  return out;
}

/** [begin, end, prevChain, nextChain] for every piece where neither layout changes chain. */
function unionPieces(a: ChainLayout, b: ChainLayout): Array<[number, number, readonly string[], readonly string[]]> {
  const out: Array<[number, number, readonly string[], readonly string[]]> = [];
  let i = 0;
  let j = 0;
  let begin = 0;
  const end = a.ranges[a.ranges.length - 1].end;
  while (begin < end) {
    const stop = Math.min(a.ranges[i].end, b.ranges[j].end);
    out.push([begin, stop, a.ranges[i].chain, b.ranges[j].chain]);
    begin = stop;
    if (a.ranges[i].end === stop) i++;
    if (b.ranges[j].end === stop) j++;
  }
  return out;
}

/**
 * Whether `sender` comes just before `self` in the chain of every key of `keys`: the only node a
 * FORWARD of them may come from. Forwards reach a member along one path only, so they arrive in
 * the order they were made; a node whose chains differ (a ring behind or ahead) is refused and
 * forwards again once both agree.
 */
export function precedesAll(layout: ChainLayout, sender: string, self: string, keys: KvKeys): boolean {
  let ok = true;
  forEachPiece(layout, keys, (r) => {
    const at = r.chain.indexOf(self);
    if (at < 1 || r.chain[at - 1] !== sender) ok = false;
  });
  return ok;
}
