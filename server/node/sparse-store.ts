/**
 * Sparse table storage: sorted keys with their values, cut into blocks of up to MAX_BLOCK keys
 * (the leaf level of a B+-tree). A push merges its sorted keys with each block's in one linear
 * walk; new keys are inserted by rebuilding only the blocks they fall into.
 *
 * When a push touches a contiguous run of a block (the common case of a worker pushing its
 * working set again) the updater runs directly on the stored arrays; otherwise values are
 * gathered into scratch, updated, and scattered back.
 *
 * Rows (rows.ts): readRows / writeRows move values and updater state as they are, slot-major —
 * for n keys, [0, n*d) the values, then n*d floats per state slot; writeRows inserts keys as a
 * push does. exportRange copies out the stored keys of a range; dropRanges removes ranges.
 */
import { gallop, lowerBound } from '../../shared/keys.ts';
import type { Initializer } from '../../shared/table.ts';
import type { Updater } from '../updaters/index.ts';
import { fillInit, initValue } from './init.ts';
import { EXPORT_KEYS, exportBlocks, type RowChunk, rowsIn, rowsLength, rowsOut } from './rows.ts';

export const BLOCK_KEYS = 8192;
/** Runs of up to this many floats are copied by a loop rather than `set` (see copyRun). */
const SHORT_RUN = 32;
const MAX_BLOCK = 2 * BLOCK_KEYS;

interface Block {
  keys: Float64Array;
  values: Float32Array;
  state: Float32Array[];
}

export class SparseStore {
  private blocks: Block[] = [];
  private pos = new Int32Array(0);
  private scratch: Float32Array[] = [];
  private keyCount = 0;

  constructor(
    private readonly d: number,
    private readonly init: Initializer,
    private readonly updater: Updater,
  ) {}

  /** Number of keys stored. */
  get size(): number {
    return this.keyCount;
  }

  /** Applies `grad` (keys.length*d floats) to sorted unique `keys`, inserting new keys. */
  push(keys: Float64Array, grad: Float32Array, step: number): void {
    if (keys.length === 0) return;
    if (this.blocks.length === 0) this.blocks.push(this.block(0));
    const d = this.d;
    let i = 0;
    for (let b = 0; b < this.blocks.length && i < keys.length; b++) {
      const j = b + 1 < this.blocks.length ? lowerBound(keys, this.blocks[b + 1].keys[0], i) : keys.length;
      if (j > i) b += this.mergeInto(b, keys.subarray(i, j), grad.subarray(i * d, j * d), step) - 1;
      i = j;
    }
  }

  /**
   * Values of sorted unique `keys` (n*d floats, into `out` when given: every element is written);
   * keys never pushed read as their initial value.
   */
  pull(keys: Float64Array, out: Float32Array = new Float32Array(keys.length * this.d)): Float32Array {
    const d = this.d;
    let i = 0;
    for (let b = 0; b < this.blocks.length && i < keys.length; b++) {
      const blk = this.blocks[b];
      const j = b + 1 < this.blocks.length ? lowerBound(keys, this.blocks[b + 1].keys[0], i) : keys.length;
      if (j === i) continue;
      const n = blk.keys.length;
      let p = lowerBound(blk.keys, keys[i]);
      if (contiguous(blk.keys, p, keys, i, j)) {
        out.set(blk.values.subarray(p * d, (p + j - i) * d), i * d);
        i = j;
        continue;
      }
      for (; i < j; i++) {
        const k = keys[i];
        while (p < n && blk.keys[p] < k) p++;
        if (p < n && blk.keys[p] === k) {
          if (d === 1) out[i] = blk.values[p];
          else out.set(blk.values.subarray(p * d, p * d + d), i * d);
        } else for (let c = 0; c < d; c++) out[i * d + c] = initValue(this.init, k, c);
      }
    }
    for (; i < keys.length; i++) for (let c = 0; c < d; c++) out[i * d + c] = initValue(this.init, keys[i], c);
    return out;
  }

  /** Rows (rows.ts) of sorted unique `keys`, into `out` when given (every element is written). */
  readRows(keys: Float64Array, out?: Float32Array): Float32Array {
    const d = this.d;
    const stride = keys.length * d;
    const rows = out ?? new Float32Array(rowsLength(keys.length, d, this.updater.stateSlots));
    let i = 0;
    for (let b = 0; b < this.blocks.length && i < keys.length; b++) {
      const blk = this.blocks[b];
      const j = b + 1 < this.blocks.length ? lowerBound(keys, this.blocks[b + 1].keys[0], i) : keys.length;
      if (j === i) continue;
      const slots = [blk.values, ...blk.state];
      const n = blk.keys.length;
      let p = lowerBound(blk.keys, keys[i]);
      if (contiguous(blk.keys, p, keys, i, j)) {
        rowsOut(slots, p, j - i, d, rows, i * d, stride);
        i = j;
        continue;
      }
      for (; i < j; i++) {
        while (p < n && blk.keys[p] < keys[i]) p++;
        if (p < n && blk.keys[p] === keys[i]) rowsOut(slots, p, 1, d, rows, i * d, stride);
        else this.initRow(rows, i, keys[i], stride);
      }
    }
    for (; i < keys.length; i++) this.initRow(rows, i, keys[i], stride);
    return rows;
  }

  /** Sets values and state of sorted unique `keys` to `rows` (length checked by the caller), inserting new keys. */
  writeRows(keys: Float64Array, rows: Float32Array): void {
    if (keys.length === 0) return;
    if (this.blocks.length === 0) this.blocks.push(this.block(0));
    const stride = keys.length * this.d;
    let i = 0;
    for (let b = 0; b < this.blocks.length && i < keys.length; b++) {
      const j = b + 1 < this.blocks.length ? lowerBound(keys, this.blocks[b + 1].keys[0], i) : keys.length;
      if (j === i) continue;
      this.writeBlockRows(b, keys, i, j, rows, stride);
      b += this.split(b) - 1;
      i = j;
    }
  }

  /**
   * Writes the rows of keys[i, j), which fall in block `b`, by runs found with galloping search:
   * when the block holds every key, each run of stored keys is overwritten in place; else one
   * merged block is built from runs of stored and of written keys, each copied whole. A range
   * copy (MIGRATE) writes long runs of new keys between other members' runs: a key at a time,
   * that made a join's copy slow.
   */
  private writeBlockRows(
    b: number,
    keys: Float64Array,
    i: number,
    j: number,
    rows: Float32Array,
    stride: number,
  ): void {
    const blk = this.blocks[b];
    const stored = blk.keys;
    const n = stored.length;
    const d = this.d;
    let missing = 0;
    for (let x = i, p = 0; x < j; ) {
      p = gallop(stored, p, keys[x]);
      if (p < n && stored[p] === keys[x]) {
        x++;
        p++;
      } else {
        const e = p < n ? Math.min(gallop(keys, x, stored[p]), j) : j;
        missing += e - x;
        x = e;
      }
    }
    if (missing === 0) {
      const slots = [blk.values, ...blk.state];
      for (let x = i, p = 0; x < j; ) {
        p = gallop(stored, p, keys[x]);
        const from = x;
        for (x++, p++; x < j && p < n && stored[p] === keys[x]; x++, p++);
        rowsIn(rows, from * d, stride, x - from, d, slots, p - (x - from));
      }
      return;
    }
    const out = this.block(n + missing);
    const into = [out.values, ...out.state];
    let p = 0;
    let w = 0;
    for (let x = i; x < j; ) {
      const q = gallop(stored, p, keys[x]);
      if (q > p) this.copyRun(blk, p, out, w, q - p);
      w += q - p;
      p = q;
      const from = x;
      if (p < n && stored[p] === keys[x]) for (x++, p++; x < j && p < n && stored[p] === keys[x]; x++, p++);
      else {
        x = p < n ? Math.min(gallop(keys, x, stored[p]), j) : j;
        this.keyCount += x - from;
      }
      out.keys.set(keys.subarray(from, x), w);
      rowsIn(rows, from * d, stride, x - from, d, into, w);
      w += x - from;
    }
    if (p < n) this.copyRun(blk, p, out, w, n - p);
    this.blocks[b] = out;
  }

  /** The stored keys of [begin, end) with copies of their rows, in key order, at most `maxKeys` per chunk. */
  exportRange(begin: number, end: number, maxKeys = EXPORT_KEYS): RowChunk[] {
    return exportBlocks(this.blocks, begin, end, maxKeys, this.d);
  }

  /**
   * Removes the keys of `ranges` (sorted, disjoint [begin, end) pairs): they read as initial
   * value and state again. Each block is cut once for all the ranges that reach into it (a
   * join or drain gives away hundreds of pieces at once).
   */
  dropRanges(ranges: ReadonlyArray<readonly [number, number]>): void {
    const kept: Block[] = [];
    let r = 0;
    const cuts: number[] = [];
    for (const blk of this.blocks) {
      const n = blk.keys.length;
      while (r < ranges.length && n > 0 && ranges[r][1] <= blk.keys[0]) r++;
      cuts.length = 0;
      let gone = 0;
      for (let q = r; q < ranges.length && n > 0 && ranges[q][0] <= blk.keys[n - 1]; q++) {
        const a = lowerBound(blk.keys, ranges[q][0]);
        const e = lowerBound(blk.keys, ranges[q][1], a);
        if (e > a) cuts.push(a, e);
        gone += e - a;
      }
      this.keyCount -= gone;
      if (gone === 0) kept.push(blk);
      else if (gone < n) {
        const out = this.block(n - gone);
        let p = 0;
        let w = 0;
        for (let c = 0; c < cuts.length; c += 2) {
          this.copyRun(blk, p, out, w, cuts[c] - p);
          w += cuts[c] - p;
          p = cuts[c + 1];
        }
        this.copyRun(blk, p, out, w, n - p);
        kept.push(out);
      } // else nothing is left of the block: it goes
    }
    this.blocks = kept;
  }

  /** Writes the initial value and state of key `k` as the i-th key of rows with `stride` floats per slot. */
  private initRow(rows: Float32Array, i: number, k: number, stride: number): void {
    const d = this.d;
    fillInit(this.init, rows, i * d, 1, d, () => k);
    for (let t = 0; t < this.updater.stateSlots; t++) {
      const at = (1 + t) * stride + i * d;
      rows.fill(this.updater.stateInit[t], at, at + d);
    }
  }

  private block(n: number): Block {
    return {
      keys: new Float64Array(n),
      values: new Float32Array(n * this.d),
      state: this.updater.stateInit.map((v) => new Float32Array(n * this.d).fill(v)),
    };
  }

  /** Merges a run of keys into block `b`; returns how many blocks it occupies afterwards. */
  private mergeInto(b: number, ks: Float64Array, grad: Float32Array, step: number): number {
    const blk = this.blocks[b];
    const m = ks.length;
    const first = lowerBound(blk.keys, ks[0]);
    if (contiguous(blk.keys, first, ks, 0, m)) {
      // Every key is stored, side by side: update the stored arrays in place.
      const d = this.d;
      this.updater.apply(
        blk.values.subarray(first * d, (first + m) * d),
        blk.state.map((s) => s.subarray(first * d, (first + m) * d)),
        grad,
        step,
      );
      return 1;
    }
    this.apply(this.place(b, ks, first), this.pos, m, grad, step);
    return this.split(b);
  }

  /**
   * Finds the positions of `ks` in block `b` (from `first` on) into this.pos, inserting the
   * missing keys (at their initial value and state); returns the block, maybe a new one.
   */
  private place(b: number, ks: Float64Array, first: number): Block {
    const blk = this.blocks[b];
    const m = ks.length;
    if (this.pos.length < m) this.pos = new Int32Array(Math.max(m, 2 * this.pos.length));
    const pos = this.pos;
    let missing = 0;
    const n = blk.keys.length;
    for (let i = 0, p = first; i < m; i++) {
      const k = ks[i];
      while (p < n && blk.keys[p] < k) p++;
      if (p < n && blk.keys[p] === k) pos[i] = p;
      else {
        pos[i] = -1 - p; // missing: where it goes
        missing++;
      }
    }
    if (missing === 0) return blk;
    this.blocks[b] = this.insert(blk, ks, pos, missing);
    return this.blocks[b];
  }

  /** Cuts block `b` into blocks of BLOCK_KEYS when it outgrew MAX_BLOCK; returns how many it is now. */
  private split(b: number): number {
    const blk = this.blocks[b];
    if (blk.keys.length <= MAX_BLOCK) return 1;
    const parts: Block[] = [];
    for (let a = 0; a < blk.keys.length; a += BLOCK_KEYS)
      parts.push(this.sliceBlock(blk, a, Math.min(a + BLOCK_KEYS, blk.keys.length)));
    this.blocks.splice(b, 1, ...parts);
    return parts.length;
  }

  /**
   * A new block holding `blk`'s keys plus the missing ones of `ks` (pos −1 − p: they go before
   * stored position p), at their initial value; fills `pos` for all of `ks`.
   */
  private insert(blk: Block, ks: Float64Array, pos: Int32Array, missing: number): Block {
    const d = this.d;
    const n = blk.keys.length;
    const out = this.block(n + missing);
    let p = 0;
    let w = 0;
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i];
      const stop = pos[i] >= 0 ? pos[i] : -1 - pos[i];
      // Copy the stored keys before k, then k itself (existing or new).
      const run = stop - p;
      if (run > 0) this.copyRun(blk, p, out, w, run);
      w += run;
      p = stop;
      if (pos[i] >= 0) {
        this.copyRun(blk, p, out, w, 1);
        p++;
      } else {
        out.keys[w] = k;
        fillInit(this.init, out.values, w * d, 1, d, () => k);
        this.keyCount++;
      }
      pos[i] = w++;
    }
    if (p < n) this.copyRun(blk, p, out, w, n - p);
    return out;
  }

  private copyRun(from: Block, at: number, to: Block, w: number, count: number): void {
    const d = this.d;
    if (count * d <= SHORT_RUN) {
      // Between inserted keys runs are often a few keys long: a plain loop beats subarray + set.
      for (let i = 0; i < count; i++) to.keys[w + i] = from.keys[at + i];
      copyFloats(from.values, at * d, to.values, w * d, count * d);
      for (let s = 0; s < to.state.length; s++) copyFloats(from.state[s], at * d, to.state[s], w * d, count * d);
      return;
    }
    to.keys.set(from.keys.subarray(at, at + count), w);
    to.values.set(from.values.subarray(at * d, (at + count) * d), w * d);
    for (let s = 0; s < to.state.length; s++) to.state[s].set(from.state[s].subarray(at * d, (at + count) * d), w * d);
  }

  private sliceBlock(blk: Block, a: number, b: number): Block {
    const d = this.d;
    return {
      keys: blk.keys.slice(a, b),
      values: blk.values.slice(a * d, b * d),
      state: blk.state.map((s) => s.slice(a * d, b * d)),
    };
  }

  private apply(blk: Block, pos: Int32Array, m: number, grad: Float32Array, step: number): void {
    const d = this.d;
    if (pos[m - 1] - pos[0] === m - 1) {
      const a = pos[0] * d;
      const b = (pos[m - 1] + 1) * d;
      this.updater.apply(
        blk.values.subarray(a, b),
        blk.state.map((s) => s.subarray(a, b)),
        grad,
        step,
      );
      return;
    }
    // Scattered positions: gather, update, scatter.
    const len = m * d;
    const slots = 1 + blk.state.length;
    while (this.scratch.length < slots) this.scratch.push(new Float32Array(0));
    for (let s = 0; s < slots; s++)
      if (this.scratch[s].length < len) this.scratch[s] = new Float32Array(Math.max(len, 2 * this.scratch[s].length));
    const arrays = [blk.values, ...blk.state];
    const tmp = arrays.map((_, s) => this.scratch[s].subarray(0, len));
    for (let s = 0; s < slots; s++) gather(arrays[s], tmp[s], pos, m, d);
    this.updater.apply(tmp[0], tmp.slice(1), grad, step);
    for (let s = 0; s < slots; s++) scatter(tmp[s], arrays[s], pos, m, d);
  }
}

/**
 * True when keys[i..j) equal stored[p .. p + (j - i)). Both lists are sorted and unique, so equal
 * first and last elements over a stretch of the same length imply equality of the whole run.
 */
function contiguous(stored: Float64Array, p: number, keys: Float64Array, i: number, j: number): boolean {
  const m = j - i;
  return m > 0 && p + m <= stored.length && stored[p] === keys[i] && stored[p + m - 1] === keys[j - 1];
}

function copyFloats(src: Float32Array, from: number, dst: Float32Array, to: number, n: number): void {
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
}

function gather(src: Float32Array, dst: Float32Array, pos: Int32Array, m: number, d: number): void {
  if (d === 1) for (let i = 0; i < m; i++) dst[i] = src[pos[i]];
  else for (let i = 0; i < m; i++) dst.set(src.subarray(pos[i] * d, pos[i] * d + d), i * d);
}

function scatter(src: Float32Array, dst: Float32Array, pos: Int32Array, m: number, d: number): void {
  if (d === 1) for (let i = 0; i < m; i++) dst[pos[i]] = src[i];
  else for (let i = 0; i < m; i++) dst.set(src.subarray(i * d, i * d + d), pos[i] * d);
}
