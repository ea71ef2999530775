/**
 * Consistent hashing with virtual nodes: which server node owns which key range of a table.
 *
 * Why not ps-lite's uniform split of the whole key space per server: hashed or small key spaces
 * then skew badly (ps-lite issue #119). The rule below is normative (PROTOCOL.md); other
 * languages must reproduce it bit for bit. All arithmetic is IEEE-754 binary64, as written.
 *
 * 1. Points. The ring is the circle [0, 2^32). Node `id` gets `vnodes` points (default 512) at
 *    positions `murmur3_32(utf8(`${id}#${i}`), seed 0)` for i = 0..vnodes-1. All points of all
 *    nodes are sorted ascending by (position, id), ids compared by UTF-16 code units (= byte order
 *    for ASCII ids). Call them P_0..P_{m-1}; the input order of the node ids does not matter.
 * 2. Large tables (K * d > smallTableValues, default 65536 floats). Point P_i has the boundary
 *    b_i = Math.floor((position_i / 4294967296) * K), non-decreasing in i and < K.
 *    The owner of key k is the node of the first point (lowest i) with b_i > k; when no such
 *    point exists (k >= b_{m-1}) it wraps to the node of P_0. So P_i owns [b_{i-1}, b_i) (ties:
 *    the first of equal boundaries), and P_0 owns both [0, b_0) and [b_{m-1}, K).
 *    This is the successor rule "arc (P_{i-1}, P_i] belongs to P_i" carried into key space.
 *    [0, K) is then cut into ranges; empty ones are dropped and neighbours with the same owner merged.
 * 3. Small tables (K * d <= smallTableValues): the whole table [0, K) lives on the node of the first
 *    point with position >= murmur3_32(utf8(`table#${tableId}`)), wrapping to P_0.
 * 4. Replicas of key k: the owner's point (the point chosen in 2 or 3), then the following points
 *    clockwise (i+1, i+2, ... wrapping), skipping nodes already listed.
 * Adding a node only moves keys to it; removing one only moves its keys (tested).
 */
import { TabshardError } from './errors.ts';
import { hashString } from './hash.ts';
import { checkKey, checkKeySpace, checkRange, lowerBound, upperBound } from './keys.ts';

/**
 * Points per node: 512 keeps every node's share of a large table within ±7% of even for the
 * node sets n1…n8 of 2 to 8 nodes (128: up to ±17%, 256: ±14%; shared/ring.test.ts), at ~25 ns
 * per key to slice a key list over the ranges.
 */
export const DEFAULT_VNODES = 512;
export const DEFAULT_SMALL_TABLE_VALUES = 65536;
const MAX_VNODES = 65536;
const RING_SIZE = 4294967296;

/** What the ring needs to know about a table: its id, key space [0, keySpace) and floats per key. */
export interface TableShape {
  id: number;
  keySpace: number;
  valueLength: number;
}
/** A key range [begin, end) and the node that owns it. */
export interface OwnedRange {
  readonly begin: number;
  readonly end: number;
  readonly owner: string;
}
/** A run of a sorted key list owned by one node: indices [begin, end) into the list. */
export interface KeySlice {
  owner: string;
  begin: number;
  end: number;
}
export interface RingOptions {
  vnodes?: number;
  smallTableValues?: number;
  version?: number;
}
/** The wire form of a ring (ring-update messages). */
export interface RingJSON {
  version: number;
  vnodes: number;
  smallTableValues: number;
  nodes: string[];
}

/** A key range [begin, end) and its replica chain (master first). */
export interface ChainRange {
  readonly begin: number;
  readonly end: number;
  readonly chain: readonly string[];
}
/** A table's chains: ranges in key order and their begins (for binary search). */
export interface ChainLayout {
  readonly ranges: readonly ChainRange[];
  readonly begins: Float64Array;
}

function sameChain(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Layout {
  ranges: readonly OwnedRange[];
  begins: Float64Array;
}

function invalid(detail: string): never {
  throw new TabshardError('TS_ERR_INVALID_ARGUMENT', detail);
}
function checkCount(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    invalid(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

interface Points {
  positions: Float64Array;
  pointNode: Int32Array;
  cache: Map<string, Layout>;
  chainCache: Map<string, ChainLayout>;
}

/**
 * The sorted points of these nodes (in this order) with `vnodes` each, and their layout caches,
 * computed once for the last few node lists (and small-table bounds): the rings of a join or failover (copying, frozen,
 * final; each node's own copy of each) differ in version only, and hashing 512 points per node
 * and sorting them took most of a join's CPU.
 */
const POINTS = new Map<string, Points>();
const POINTS_KEPT = 16;

function pointsOf(ids: readonly string[], vnodes: number, smallTableValues: number): Points {
  // The layouts depend on the small-table bound too.
  const key = `${vnodes}\u0000${smallTableValues}\u0000${ids.join('\u0000')}`;
  const hit = POINTS.get(key);
  if (hit) return hit;
  const m = ids.length * vnodes;
  const pos = new Float64Array(m);
  const node = new Int32Array(m);
  for (let n = 0, p = 0; n < ids.length; n++) {
    for (let i = 0; i < vnodes; i++, p++) {
      pos[p] = hashString(`${ids[n]}#${i}`);
      node[p] = n;
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => {
    if (pos[a] !== pos[b]) return pos[a] - pos[b];
    return ids[node[a]] < ids[node[b]] ? -1 : ids[node[a]] > ids[node[b]] ? 1 : 0;
  });
  const points: Points = {
    positions: new Float64Array(m),
    pointNode: new Int32Array(m),
    cache: new Map(),
    chainCache: new Map(),
  };
  for (let i = 0; i < m; i++) {
    points.positions[i] = pos[order[i]];
    points.pointNode[i] = node[order[i]];
  }
  if (POINTS.size >= POINTS_KEPT) POINTS.delete(POINTS.keys().next().value!);
  POINTS.set(key, points);
  return points;
}

/** An immutable ring of server nodes. Layouts are computed once per table shape and cached. */
export class Ring {
  readonly nodes: readonly string[];
  readonly version: number;
  readonly vnodes: number;
  readonly smallTableValues: number;
  /** Point positions, sorted by (position, node id). */
  private readonly positions: Float64Array;
  /** Index into `nodes` of each point. */
  private readonly pointNode: Int32Array;
  /** Layouts by table shape; shared by every ring of the same nodes and vnodes (see `pointsOf`). */
  private readonly cache: Map<string, Layout>;
  private readonly chainCache: Map<string, ChainLayout>;

  constructor(nodeIds: readonly string[], opts: RingOptions = {}) {
    if (!Array.isArray(nodeIds)) invalid('node ids must be an array of strings');
    if (nodeIds.length === 0) throw new TabshardError('TS_ERR_RING_EMPTY');
    const seen = new Set<string>();
    for (const id of nodeIds) {
      if (typeof id !== 'string' || id.length === 0) invalid('node ids must be non-empty strings');
      if (seen.has(id)) invalid(`duplicate node id ${JSON.stringify(id)}`);
      seen.add(id);
    }
    this.nodes = Object.freeze([...nodeIds]);
    this.vnodes = checkCount('vnodes', opts.vnodes ?? DEFAULT_VNODES, 1, MAX_VNODES);
    this.smallTableValues = checkCount(
      'smallTableValues',
      opts.smallTableValues ?? DEFAULT_SMALL_TABLE_VALUES,
      0,
      Number.MAX_SAFE_INTEGER,
    );
    this.version = checkCount('version', opts.version ?? 0, 0, Number.MAX_SAFE_INTEGER);

    const points = pointsOf(this.nodes, this.vnodes, this.smallTableValues);
    this.positions = points.positions;
    this.pointNode = points.pointNode;
    this.cache = points.cache;
    this.chainCache = points.chainCache;
  }

  /** The owned ranges of a table: sorted, non-empty, covering [0, keySpace) exactly; cached, frozen. */
  ranges(table: TableShape): readonly OwnedRange[] {
    return this.layout(table).ranges;
  }

  /** The node owning `key` (TS_ERR_KEY_OUT_OF_RANGE outside [0, keySpace)). */
  owner(table: TableShape, key: number): string {
    const { ranges, begins } = this.layout(table);
    checkKey(key, table.keySpace);
    return ranges[upperBound(begins, key) - 1].owner;
  }

  /** The owner of `key` followed by up to `k` further distinct nodes clockwise (min(k + 1, nodes) in all). */
  replicas(table: TableShape, key: number, k: number): string[] {
    this.layout(table);
    checkKey(key, table.keySpace);
    checkCount('replica count', k, 0, Number.MAX_SAFE_INTEGER);
    return [...this.chainAt(this.startPoint(table, key), k)];
  }

  /**
   * The replica chains of a table (rule 4) for `k` replicas: sorted, non-empty ranges covering
   * [0, keySpace), each with its chain — the master first, then up to `k` further distinct nodes —
   * neighbours with equal chains merged. One owned range may hold several chains (a node's
   * points have different successors). Cached per table shape and k; frozen.
   */
  chainRanges(table: TableShape, k: number): ChainLayout {
    checkCount('replica count', k, 0, Number.MAX_SAFE_INTEGER);
    this.layout(table);
    const cacheKey = `${table.id}:${table.keySpace}:${table.valueLength}:k${k}`;
    const hit = this.chainCache.get(cacheKey);
    if (hit) return hit;
    const K = table.keySpace;
    const ranges: ChainRange[] = [];
    const push = (begin: number, end: number, point: number): void => {
      const chain = this.chainAt(point, k);
      const last = ranges[ranges.length - 1];
      if (last !== undefined && sameChain(last.chain, chain))
        ranges[ranges.length - 1] = { begin: last.begin, end, chain };
      else ranges.push({ begin, end, chain });
    };
    if (this.isSmall(table)) push(0, K, this.startPoint(table, 0));
    else {
      let prev = 0;
      for (let i = 0; i < this.positions.length; i++) {
        const b = Math.floor((this.positions[i] / RING_SIZE) * K);
        if (b > prev) {
          push(prev, b, i);
          prev = b;
        }
      }
      if (prev < K) push(prev, K, 0);
    }
    const begins = new Float64Array(ranges.length);
    for (let r = 0; r < ranges.length; r++) begins[r] = ranges[r].begin;
    const out: ChainLayout = { ranges: Object.freeze(ranges.map((r) => Object.freeze(r))), begins };
    if (this.chainCache.size >= 1024) this.chainCache.clear();
    this.chainCache.set(cacheKey, out);
    return out;
  }

  /** The chain starting at point `i`: its node, then the next distinct nodes clockwise (k + 1 at most). */
  private chainAt(i: number, k: number): readonly string[] {
    const want = Math.min(k + 1, this.nodes.length);
    const taken = new Uint8Array(this.nodes.length);
    const out: string[] = [];
    const m = this.positions.length;
    for (let steps = 0; out.length < want && steps < m; i = (i + 1) % m, steps++) {
      const n = this.pointNode[i];
      if (taken[n] === 0) {
        taken[n] = 1;
        out.push(this.nodes[n]);
      }
    }
    return Object.freeze(out);
  }

  /**
   * Splits a sorted, unique key list (see `checkSortedKeys`) into per-owner runs of indices, in
   * list order; adjacent runs never share an owner. Only the first and last keys are range-checked.
   */
  sliceKeys(table: TableShape, keys: Float64Array): KeySlice[] {
    const { ranges, begins } = this.layout(table);
    const n = keys.length;
    const out: KeySlice[] = [];
    if (n === 0) return out;
    checkKey(keys[0], table.keySpace);
    checkKey(keys[n - 1], table.keySpace);
    let last: KeySlice | null = null;
    for (let i = 0, r = 0; i < n; r++) {
      r = upperBound(begins, keys[i], r) - 1;
      if (r < 0) r = 0; // only reachable with unsorted input
      const j = lowerBound(keys, ranges[r].end, i + 1, n);
      const owner = ranges[r].owner;
      if (last !== null && last.owner === owner) {
        last.end = j;
      } else {
        last = { owner, begin: i, end: j };
        out.push(last);
      }
      i = j;
    }
    return out;
  }

  /** The owned pieces of [begin, end), in key order (empty for an empty range). */
  sliceRange(table: TableShape, begin: number, end: number): OwnedRange[] {
    const { ranges, begins } = this.layout(table);
    checkRange(begin, end, table.keySpace);
    const out: OwnedRange[] = [];
    for (let r = upperBound(begins, begin) - 1; begin < end && r < ranges.length && ranges[r].begin < end; r++) {
      const { begin: b, end: e, owner } = ranges[r];
      out.push({ begin: Math.max(b, begin), end: Math.min(e, end), owner });
    }
    return out;
  }

  /** A ring with these nodes, the same options and version + 1. */
  withNodes(nodeIds: readonly string[]): Ring {
    return new Ring(nodeIds, {
      vnodes: this.vnodes,
      smallTableValues: this.smallTableValues,
      version: this.version + 1,
    });
  }

  toJSON(): RingJSON {
    return {
      version: this.version,
      vnodes: this.vnodes,
      smallTableValues: this.smallTableValues,
      nodes: [...this.nodes],
    };
  }

  /** Parses the output of `toJSON` (TS_ERR_INVALID_ARGUMENT on a bad shape, TS_ERR_RING_EMPTY for no nodes). */
  static fromJSON(obj: unknown): Ring {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) invalid('ring JSON must be an object');
    const o = obj as Record<string, unknown>;
    if (!Array.isArray(o.nodes)) invalid('ring JSON: nodes must be an array of strings');
    return new Ring(o.nodes as string[], {
      version: checkCount('ring JSON: version', o.version, 0, Number.MAX_SAFE_INTEGER),
      vnodes: checkCount('ring JSON: vnodes', o.vnodes, 1, MAX_VNODES),
      smallTableValues: checkCount('ring JSON: smallTableValues', o.smallTableValues, 0, Number.MAX_SAFE_INTEGER),
    });
  }

  private isSmall(table: TableShape): boolean {
    return table.keySpace * table.valueLength <= this.smallTableValues;
  }

  /** Index of the point that owns `key` (rule 2) or the whole small table (rule 3). */
  private startPoint(table: TableShape, key: number): number {
    const pos = this.positions;
    const m = pos.length;
    if (this.isSmall(table)) {
      const i = lowerBound(pos, hashString(`table#${table.id}`));
      return i === m ? 0 : i;
    }
    const K = table.keySpace;
    let lo = 0;
    let hi = m;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Math.floor((pos[mid] / RING_SIZE) * K) <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo === m ? 0 : lo;
  }

  private layout(table: TableShape): Layout {
    if (typeof table !== 'object' || table === null) invalid('table shape must be an object');
    const { id, keySpace: K, valueLength: d } = table;
    checkCount('table id', id, 0, Number.MAX_SAFE_INTEGER);
    checkKeySpace(K);
    checkCount('value length', d, 1, Number.MAX_SAFE_INTEGER);
    const cacheKey = `${id}:${K}:${d}`;
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const ranges: OwnedRange[] = [];
    const push = (begin: number, end: number, n: number): void => {
      const owner = this.nodes[n];
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.owner === owner) ranges[ranges.length - 1] = { begin: last.begin, end, owner };
      else ranges.push({ begin, end, owner });
    };
    if (this.isSmall(table)) {
      push(0, K, this.pointNode[this.startPoint(table, 0)]);
    } else {
      let prev = 0;
      for (let i = 0; i < this.positions.length; i++) {
        const b = Math.floor((this.positions[i] / RING_SIZE) * K);
        if (b > prev) {
          push(prev, b, this.pointNode[i]);
          prev = b;
        }
      }
      if (prev < K) push(prev, K, this.pointNode[0]);
    }
    const begins = new Float64Array(ranges.length);
    for (let r = 0; r < ranges.length; r++) begins[r] = ranges[r].begin;
    const layout: Layout = { ranges: Object.freeze(ranges.map((r) => Object.freeze(r))), begins };
    if (this.cache.size >= 1024) this.cache.clear();
    this.cache.set(cacheKey, layout);
    return layout;
  }
}
