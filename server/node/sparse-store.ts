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
 * push does. exportRange copies out the stored keys of a range; dropRange removes them.
 */
import { lowerBound } from '../../shared/keys.ts';
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
    const d = this.d;
    const stride = keys.length * d;
    let i = 0;
    for (let b = 0; b < this.blocks.length && i < keys.length; b++) {
      const j = b + 1 < this.blocks.length ? lowerBound(keys, this.blocks[b + 1].keys[0], i) : keys.length;
      if (j === i) continue;
      // New keys get no initial value here: their rows are written right after.
      const blk = this.place(b, keys.subarray(i, j), lowerBound(this.blocks[b].keys, keys[i]), false);
      const slots = [blk.values, ...blk.state];
      const pos = this.pos;
      if (pos[j - i - 1] - pos[0] === j - i - 1) rowsIn(rows, i * d, stride, j - i, d, slots, pos[0]);
      else for (let q = 0; q < j - i; q++) rowsIn(rows, (i + q) * d, stride, 1, d, slots, pos[q]);
      b += this.split(b) - 1;
      i = j;
    }
  }

  /** The stored keys of [begin, end) with copies of their rows, in key order, at most `maxKeys` per chunk. */
  exportRange(begin: number, end: number, maxKeys = EXPORT_KEYS): RowChunk[] {
    return exportBlocks(this.blocks, begin, end, maxKeys, this.d);
  }

  /** Removes the keys of [begin, end): they read as initial value and state again. */
  dropRange(begin: number, end: number): void {
    const kept: Block[] = [];
    for (const blk of this.blocks) {
      const n = blk.keys.length;
      const a = lowerBound(blk.keys, begin);
      const e = lowerBound(blk.keys, end, a);
      this.keyCount -= e - a;
      if (e === a) kept.push(blk);
      else if (e - a < n) {
        const out = this.block(n - (e - a));
        this.copyRun(blk, 0, out, 0, a);
        this.copyRun(blk, e, out, a, n - e);
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
  private place(b: number, ks: Float64Array, first: number, init = true): Block {
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
    this.blocks[b] = this.insert(blk, ks, pos, missing, init);
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
   * stored position p), at their initial value unless `init` is false; fills `pos` for all of `ks`.
   */
  private insert(blk: Block, ks: Float64Array, pos: Int32Array, missing: number, init: boolean): Block {
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
        if (init) fillInit(this.init, out.values, w * d, 1, d, () => k);
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
