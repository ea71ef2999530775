/**
 * Dense table storage: the flat float array of a key range ([key*d, key*d + d) per key), in
 * pages of PAGE_FLOATS allocated on first touch, so a node holds only the ranges it owns.
 *
 * Pulls of a range lend page views to the transport instead of copying (zero-copy); a page
 * that is lent is copied before it is next written (copy-on-write), so a reply in flight never
 * sees a later push.
 */
import type { Initializer } from '../../shared/table.ts';
import type { Updater } from '../updaters/index.ts';
import { fillInit, fillInitFlat, isZeroInit } from './init.ts';

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

  constructor(
    private readonly d: number,
    private readonly init: Initializer,
    private readonly updater: Updater,
    keySpace: number,
  ) {
    this.pageFloats = Math.min(PAGE_FLOATS, keySpace * d);
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
      const page = this.pages.get(p);
      if (page) out.set(page.values.subarray(a, a + d), i * d);
      else fillInit(this.init, out, i * d, 1, d, () => keys[i]);
    }
    return out;
  }
}

/** Ends the loans of a pull (returned, not declared: tsx would name a declared closure on every call). */
function releaser(loans: Array<[Page, Float32Array]>): () => void {
  return () => {
    // A page copied since (copy-on-write) has a new array; its loan count restarted at 0.
    for (const [page, arr] of loans) if (page.values === arr && page.lent > 0) page.lent--;
  };
}
