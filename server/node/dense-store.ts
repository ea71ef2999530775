/**
 * Dense table storage: the flat float array of a key range ([key*d, key*d + d) per key), in
 * pages of PAGE_FLOATS allocated on first touch, so a node holds only the ranges it owns.
 *
 * Pulls of a range lend page views to the transport instead of copying (zero-copy); a page
 * that is lent is copied before it is next written (copy-on-write), so a reply in flight never
 * sees a later push.
 *
 * Rows (rows.ts): readRows / writeRows move values and updater state as they are, slot-major —
 * for n keys, [0, n*d) the values, then n*d floats per state slot — page-wise for ranges; a
 * write goes through the same copy-on-write as a push. An unallocated page reads as the initial
 * value and state, so an export sends only allocated pages, and dropRange frees pages.
 */
import type { Initializer } from '../../shared/table.ts';
import type { Updater } from '../updaters/index.ts';
import { fillInit, fillInitFlat, initValue, isZeroInit } from './init.ts';
import { EXPORT_KEYS, type RowChunk, rowsIn, rowsLength, rowsOut } from './rows.ts';

export const PAGE_FLOATS = 1 << 18;

interface Page {
  values: Float32Array;
  state: Float32Array[];
  /** Outstanding loans of the current `values` array. */
  lent: number;
}

export class DenseStore {
  private readonly pages = new Map<number, Page>();
  /** Floats per page: PAGE_FLOATS, or the whole table when it is smaller (a 4 KB table is one 4 KB page). */
  private readonly pageFloats: number;
  /** Floats of the whole key space (the last page may reach past it). */
  private readonly floats: number;

  constructor(
    private readonly d: number,
    private readonly init: Initializer,
    private readonly updater: Updater,
    keySpace: number,
  ) {
    this.floats = keySpace * d;
    this.pageFloats = Math.min(PAGE_FLOATS, this.floats);
  }

  /** Number of allocated floats (for stats). */
  get allocatedFloats(): number {
    return this.pages.size * this.pageFloats;
  }

  private page(p: number): Page {
    let page = this.pages.get(p);
    if (!page) {
      const values = new Float32Array(this.pageFloats);
      if (!isZeroInit(this.init)) fillInitFlat(this.init, values, 0, p * this.pageFloats, this.pageFloats, this.d);
      const state = this.updater.stateInit.map((v) => new Float32Array(this.pageFloats).fill(v));
      page = { values, state, lent: 0 };
      this.pages.set(p, page);
    }
    return page;
  }

  private writable(page: Page): Float32Array {
    if (page.lent > 0) {
      page.values = page.values.slice();
      page.lent = 0;
    }
    return page.values;
  }

  /** Applies `grad` (length (end-begin)*d) to keys [begin, end). */
  pushRange(begin: number, end: number, grad: Float32Array, step: number): void {
    this.applyFlat(begin * this.d, end * this.d, grad, 0, step);
  }

  /** Applies `grad` to sorted unique `keys`, one contiguous run of keys at a time. */
  pushKeys(keys: Float64Array, grad: Float32Array, step: number): void {
    const d = this.d;
    let i = 0;
    while (i < keys.length) {
      let j = i + 1;
      while (j < keys.length && keys[j] === keys[j - 1] + 1) j++;
      this.applyFlat(keys[i] * d, (keys[j - 1] + 1) * d, grad, i * d, step);
      i = j;
    }
  }

  private applyFlat(from: number, to: number, grad: Float32Array, gradAt: number, step: number): void {
    let g = gradAt;
    for (let off = from; off < to; ) {
      const p = Math.floor(off / this.pageFloats);
      const a = off - p * this.pageFloats;
      const b = Math.min(this.pageFloats, to - p * this.pageFloats);
      const page = this.page(p);
      const values = this.writable(page);
      const state = page.state.length === 0 ? page.state : page.state.map((s) => s.subarray(a, b));
      this.updater.apply(values.subarray(a, b), state, grad.subarray(g, g + (b - a)), step);
      g += b - a;
      off += b - a;
    }
  }

  /**
   * Values of keys [begin, end) as page views, lent until `release` runs (pass it as the
   * transport's onSent).
   */
  pullRange(begin: number, end: number): { parts: Float32Array[]; release: () => void } {
    const parts: Float32Array[] = [];
    const loans: Array<[Page, Float32Array]> = [];
    for (let off = begin * this.d, to = end * this.d; off < to; ) {
      const p = Math.floor(off / this.pageFloats);
      const a = off - p * this.pageFloats;
      const b = Math.min(this.pageFloats, to - p * this.pageFloats);
      const page = this.page(p);
      page.lent++;
      loans.push([page, page.values]);
      parts.push(page.values.subarray(a, b));
      off += b - a;
    }
    return { parts, release: releaser(loans) };
  }

  /** Copies the values of sorted unique `keys` into `out` (n*d floats; every element is written). */
  pullKeys(keys: Float64Array, out: Float32Array = new Float32Array(keys.length * this.d)): Float32Array {
    const d = this.d;
    for (let i = 0; i < keys.length; i++) {
      const off = keys[i] * d;
      const p = Math.floor(off / this.pageFloats);
      const a = off - p * this.pageFloats;
      if (a + d > this.pageFloats) {
        this.readStraddling(off, out, i * d);
        continue;
      }
      const page = this.pages.get(p);
      if (page) out.set(page.values.subarray(a, a + d), i * d);
      else fillInit(this.init, out, i * d, 1, d, () => keys[i]);
    }
    return out;
  }

  /** The d values at flat offset `off` of a key cut by a page edge (d does not divide the page), into out[at..]. */
  private readStraddling(off: number, out: Float32Array, at: number): void {
    for (let done = 0; done < this.d; ) {
      const p = Math.floor((off + done) / this.pageFloats);
      const a = off + done - p * this.pageFloats;
      const len = Math.min(this.d - done, this.pageFloats - a);
      const page = this.pages.get(p);
      if (page) out.set(page.values.subarray(a, a + len), at + done);
      else fillInitFlat(this.init, out, at + done, off + done, len, this.d);
      done += len;
    }
  }

  /** Rows (rows.ts) of sorted unique `keys`, into `out` when given (every element is written). */
  readRows(keys: Float64Array, out?: Float32Array): Float32Array {
    const d = this.d;
    const rows = out ?? new Float32Array(rowsLength(keys.length, d, this.updater.stateSlots));
    for (let i = 0; i < keys.length; ) {
      const j = runEnd(keys, i);
      this.readFlat(keys[i] * d, (keys[j - 1] + 1) * d, rows, i * d, keys.length * d);
      i = j;
    }
    return rows;
  }

  /** Sets values and state of sorted unique `keys` to `rows` (rows.ts layout, length checked by the caller). */
  writeRows(keys: Float64Array, rows: Float32Array): void {
    const d = this.d;
    for (let i = 0; i < keys.length; ) {
      const j = runEnd(keys, i);
      this.writeFlat(keys[i] * d, (keys[j - 1] + 1) * d, rows, i * d, keys.length * d);
      i = j;
    }
  }

  /** Rows of keys [begin, end), copied page by page. */
  readRowsRange(begin: number, end: number): Float32Array {
    const rows = new Float32Array(rowsLength(end - begin, this.d, this.updater.stateSlots));
    this.readFlat(begin * this.d, end * this.d, rows, 0, (end - begin) * this.d);
    return rows;
  }

  /** Sets keys [begin, end) to `rows`, page by page (a lent page is copied first). */
  writeRowsRange(begin: number, end: number, rows: Float32Array): void {
    this.writeFlat(begin * this.d, end * this.d, rows, 0, (end - begin) * this.d);
  }

  /**
   * The allocated part of keys [begin, end) as copied rows, in key order, as ranges of at most
   * `maxKeys` keys; unallocated pages hold initial values and are left out.
   */
  exportRange(begin: number, end: number, maxKeys = EXPORT_KEYS): RowChunk[] {
    const d = this.d;
    const pf = this.pageFloats;
    const ps = this.pagesIn(begin * d, end * d).sort((x, y) => x - y);
    const spans: Array<[number, number]> = [];
    for (let i = 0; i < ps.length; ) {
      let j = i + 1;
      while (j < ps.length && ps[j] === ps[j - 1] + 1) j++;
      // Keys touching pages ps[i..j); a key cut by a page edge is sent whole.
      const b = Math.max(begin, Math.floor((ps[i] * pf) / d));
      const e = Math.min(end, Math.ceil(((ps[j - 1] + 1) * pf) / d));
      const last = spans[spans.length - 1];
      if (last && b <= last[1]) last[1] = Math.max(last[1], e);
      else spans.push([b, e]);
      i = j;
    }
    const chunks: RowChunk[] = [];
    for (const [b, e] of spans)
      for (let k = b; k < e; k += maxKeys) {
        const stop = Math.min(e, k + maxKeys);
        chunks.push({ keys: { kind: 'range', begin: k, end: stop }, rows: this.readRowsRange(k, stop) });
      }
    return chunks;
  }

  /**
   * Returns keys [begin, end) to their initial value and state: pages entirely inside are freed,
   * the covered part of other allocated pages is re-initialised (a lent page is copied first).
   */
  dropRange(begin: number, end: number): void {
    const from = begin * this.d;
    const to = end * this.d;
    for (const p of this.pagesIn(from, to)) {
      const lo = p * this.pageFloats;
      const hi = Math.min(lo + this.pageFloats, this.floats);
      if (from <= lo && to >= hi) {
        // A loan of this page's array stays valid: the array is not touched, only forgotten.
        this.pages.delete(p);
        continue;
      }
      const page = this.pages.get(p)!;
      const a = Math.max(from, lo) - lo;
      const b = Math.min(to, hi) - lo;
      fillInitFlat(this.init, this.writable(page), a, lo + a, b - a, this.d);
      for (let t = 0; t < page.state.length; t++) page.state[t].fill(this.updater.stateInit[t], a, b);
    }
  }

  /** Allocated pages that overlap flat offsets [from, to), in no particular order. */
  private pagesIn(from: number, to: number): number[] {
    const pf = this.pageFloats;
    return [...this.pages.keys()].filter((p) => p * pf < to && (p + 1) * pf > from);
  }

  /**
   * Copies flat offsets [from, to) into `rows`: values at rows[at..], state slot t at
   * rows[at + (1 + t) * stride ..]; unallocated pages read as initial value and state.
   */
  private readFlat(from: number, to: number, rows: Float32Array, at: number, stride: number): void {
    const slots = this.updater.stateSlots;
    for (let off = from, r = at; off < to; ) {
      const p = Math.floor(off / this.pageFloats);
      const a = off - p * this.pageFloats;
      const len = Math.min(this.pageFloats, to - p * this.pageFloats) - a;
      const page = this.pages.get(p);
      if (page) rowsOut([page.values, ...page.state], a, len, 1, rows, r, stride);
      else {
        fillInitFlat(this.init, rows, r, off, len, this.d);
        for (let t = 0; t < slots; t++) {
          const o = r + (1 + t) * stride;
          rows.fill(this.updater.stateInit[t], o, o + len);
        }
      }
      r += len;
      off += len;
    }
  }

  /** True when rows[at .. at+len) (and its state slots, `stride` apart) are the initial rows of flat [flat, flat+len). */
  private initial(rows: Float32Array, at: number, stride: number, flat: number, len: number): boolean {
    const d = this.d;
    for (let i = 0; i < len; i++)
      if (!Object.is(rows[at + i], Math.fround(initValue(this.init, Math.floor((flat + i) / d), (flat + i) % d))))
        return false;
    for (let t = 0; t < this.updater.stateSlots; t++) {
      const v = Math.fround(this.updater.stateInit[t]);
      for (let i = 0, o = at + (1 + t) * stride; i < len; i++) if (!Object.is(rows[o + i], v)) return false;
    }
    return true;
  }

  /** The inverse of readFlat: sets flat offsets [from, to) from `rows`, allocating pages. */
  private writeFlat(from: number, to: number, rows: Float32Array, at: number, stride: number): void {
    for (let off = from, r = at; off < to; ) {
      const p = Math.floor(off / this.pageFloats);
      const a = off - p * this.pageFloats;
      const len = Math.min(this.pageFloats, to - p * this.pageFloats) - a;
      // Initial rows on an unallocated page are what it reads as already: no page for them (an
      // export sends a key cut by a page edge whole, and its part on the next page is initial).
      if (this.pages.has(p) || !this.initial(rows, r, stride, off, len)) {
        const page = this.page(p);
        rowsIn(rows, r, stride, len, 1, [this.writable(page), ...page.state], a);
      }
      r += len;
      off += len;
    }
  }
}

/** One past the end of the run of consecutive keys that starts at keys[i]. */
function runEnd(keys: Float64Array, i: number): number {
  let j = i + 1;
  while (j < keys.length && keys[j] === keys[j - 1] + 1) j++;
  return j;
}

/** Ends the loans of a pull (returned, not declared: tsx would name a declared closure on every call). */
function releaser(loans: Array<[Page, Float32Array]>): () => void {
  return () => {
    // A page copied since (copy-on-write) has a new array; its loan count restarted at 0.
    for (const [page, arr] of loans) if (page.values === arr && page.lent > 0) page.lent--;
  };
}
