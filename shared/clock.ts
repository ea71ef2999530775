/**
 * Range vector clocks (Li et al., OSDI 2014, §4.1). Instead of one vector clock per key, the key
 * space [0, K) is cut into segments, each carrying one vector of `nodeCount` timestamps. Setting a
 * node's timestamp on [begin, end) splits at most the two segments containing `begin` and `end`
 * (so one segment becomes at most three), then neighbours whose vectors became equal are merged,
 * keeping the segmentation minimal: adjacent segments always differ.
 * Timestamps are int32 in [0, 2^31 - 1]; all start at 0.
 */
import { TabshardError } from './errors.ts';
import { checkKey, checkKeySpace, checkRange } from './keys.ts';

const MAX_NODES = 65536;
const MAX_TIMESTAMP = 0x7fffffff;

/** One segment as reported by `RangeClock.segments()`. */
export interface ClockSegment {
  begin: number;
  end: number;
  clock: number[];
}

/** A vector clock per key range over [0, keySpace) for `nodeCount` nodes (workers). */
export class RangeClock {
  readonly keySpace: number;
  readonly nodeCount: number;
  /** Segment starts, ascending; begins[0] = 0 and segment s ends where s + 1 begins (or at keySpace). */
  private readonly begins: number[] = [0];
  private readonly clocks: Int32Array[];

  constructor(keySpace: number, nodeCount: number) {
    checkKeySpace(keySpace);
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `node count must be an integer in [1, ${MAX_NODES}]`);
    }
    this.keySpace = keySpace;
    this.nodeCount = nodeCount;
    this.clocks = [new Int32Array(nodeCount)];
  }

  /** Number of segments (1 for a fresh clock). */
  get segmentCount(): number {
    return this.begins.length;
  }

  /** Sets `node`'s timestamp to `t` on [begin, end) (non-empty), then re-merges equal neighbours. */
  set(begin: number, end: number, node: number, t: number): void {
    checkRange(begin, end, this.keySpace, true);
    this.checkNode(node);
    if (!Number.isInteger(t) || t < 0 || t > MAX_TIMESTAMP) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `timestamp must be an integer in [0, 2^31 - 1], got ${t}`);
    }
    const first = this.splitAt(begin);
    const stop = this.splitAt(end); // > first, so splitting here does not move `first`
    for (let s = first; s < stop; s++) this.clocks[s][node] = t;
    // Only the boundaries at first - 1 .. stop can have become mergeable.
    let s = first > 0 ? first - 1 : 0;
    let last = stop < this.begins.length ? stop : this.begins.length - 1;
    while (s < last) {
      if (equal(this.clocks[s], this.clocks[s + 1])) {
        this.begins.splice(s + 1, 1);
        this.clocks.splice(s + 1, 1);
        last--;
      } else {
        s++;
      }
    }
  }

  /** A copy of the vector clock of `key`. */
  get(key: number): Int32Array;
  /** The timestamp of `node` at `key`. */
  get(key: number, node: number): number;
  get(key: number, node?: number): Int32Array | number {
    checkKey(key, this.keySpace);
    const clock = this.clocks[this.find(key)];
    if (node === undefined) return clock.slice();
    this.checkNode(node);
    return clock[node];
  }

  /** The minimum timestamp of `node` over the non-empty range [begin, end). */
  min(begin: number, end: number, node: number): number {
    checkRange(begin, end, this.keySpace, true);
    this.checkNode(node);
    let m = MAX_TIMESTAMP;
    for (let s = this.find(begin); s < this.begins.length && this.begins[s] < end; s++) {
      const t = this.clocks[s][node];
      if (t < m) m = t;
    }
    return m;
  }

  /** The minimum over all nodes and keys of [begin, end): the slowest worker's clock there (bounded delay). */
  minAll(begin: number, end: number): number {
    checkRange(begin, end, this.keySpace, true);
    let m = MAX_TIMESTAMP;
    for (let s = this.find(begin); s < this.begins.length && this.begins[s] < end; s++) {
      const c = this.clocks[s];
      for (let n = 0; n < c.length; n++) if (c[n] < m) m = c[n];
    }
    return m;
  }

  /** All segments in key order, with copies of their vectors. */
  segments(): ClockSegment[] {
    const out: ClockSegment[] = [];
    for (let s = 0; s < this.begins.length; s++) {
      const end = s + 1 < this.begins.length ? this.begins[s + 1] : this.keySpace;
      out.push({ begin: this.begins[s], end, clock: Array.from(this.clocks[s]) });
    }
    return out;
  }

  private checkNode(node: number): void {
    if (!Number.isInteger(node) || node < 0 || node >= this.nodeCount) {
      throw new TabshardError(
        'TS_ERR_INVALID_ARGUMENT',
        `node must be an integer in [0, ${this.nodeCount}), got ${node}`,
      );
    }
  }

  /** Index of the segment containing key x (0 <= x < keySpace). */
  private find(x: number): number {
    const b = this.begins;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Makes x a segment boundary; returns the index of the segment starting at x (length when x = keySpace). */
  private splitAt(x: number): number {
    if (x === this.keySpace) return this.begins.length;
    const s = this.find(x);
    if (this.begins[s] === x) return s;
    this.begins.splice(s + 1, 0, x);
    this.clocks.splice(s + 1, 0, this.clocks[s].slice());
    return s + 1;
  }
}

function equal(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
