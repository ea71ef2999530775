/**
 * Error feedback for lossy pushes (F16, Q8; PROTOCOL.md §3.4): what quantising a push leaves out
 * of it is kept per key and added to this worker's next push of that key, so over a run every
 * gradient reaches the servers in full, only later (Seide et al. 2014; Karimireddy et al. 2019).
 * One per table of a worker, in memory for the worker's life. Bounded: past `maxKeys` keys, new
 * keys keep no residual (their quantisation error is dropped, as without feedback).
 */
import { type PackedValues, packValues, type ValueCodec } from '../shared/protocol/values.ts';
import type { Keys, NodePart } from '../shared/slicing.ts';

/** Keys a table's residuals may cover by default (4 Mi keys: 16 MiB of float32 at d = 1). */
export const DEFAULT_FEEDBACK_KEYS = 4 * 1024 * 1024;

export class ErrorFeedback {
  /** Key → its slot in `store` (d floats from slot·d). */
  private readonly slots = new Map<number, number>();
  private store: Float32Array;

  constructor(
    private readonly d: number,
    private readonly maxKeys = DEFAULT_FEEDBACK_KEYS,
  ) {
    this.store = new Float32Array(d * 1024);
  }

  /** Keys holding a residual. */
  get size(): number {
    return this.slots.size;
  }

  /** Sum of |residual| over every key (a measure of what is still owed to the servers). */
  owed(): number {
    let s = 0;
    for (let i = 0; i < this.slots.size * this.d; i++) s += Math.abs(this.store[i]);
    return s;
  }

  /**
   * Packs the values of `part` — its runs over the request's `keys`, d floats per key in `values`
   * — as `codec`, each key's residual added first; keeps the new residual (what the node will not
   * read of it) and writes what the node will read into `sent`, in request order.
   */
  pack(keys: Keys, values: Float32Array, part: NodePart, codec: ValueCodec, sent: Float32Array): PackedValues {
    const d = this.d;
    const want = new Float32Array(part.n * d);
    const slotOf = new Int32Array(part.n);
    const list = keys instanceof Float64Array ? keys : null;
    const begin = list ? 0 : (keys as { begin: number }).begin;
    let k = 0;
    for (const run of part.runs)
      for (let p = run.at; p < run.at + run.n; p++, k++) {
        const s = this.slots.get(list ? list[p] : begin + p);
        slotOf[k] = s ?? -1;
        for (let c = 0; c < d; c++) want[k * d + c] = values[p * d + c] + (s === undefined ? 0 : this.store[s * d + c]);
      }
    const got = new Float32Array(want.length);
    const packed = packValues(want, codec, got);
    k = 0;
    for (const run of part.runs)
      for (let p = run.at; p < run.at + run.n; p++, k++) {
        let s = slotOf[k];
        for (let c = 0; c < d; c++) sent[p * d + c] = got[k * d + c];
        if (s < 0) {
          if (!this.owes(want, got, k) || this.slots.size >= this.maxKeys) continue;
          s = this.slot(list ? list[p] : begin + p);
        }
        for (let c = 0; c < d; c++) {
          const r = want[k * d + c] - got[k * d + c];
          // A non-finite push is refused by the node; its residual must not poison the next ones.
          this.store[s * d + c] = Number.isFinite(r) ? r : 0;
        }
      }
    return packed;
  }

  /** Whether key k's values lose anything in `got`. */
  private owes(want: Float32Array, got: Float32Array, k: number): boolean {
    for (let c = 0; c < this.d; c++) if (want[k * this.d + c] !== got[k * this.d + c]) return true;
    return false;
  }

  private slot(key: number): number {
    const s = this.slots.size;
    if ((s + 1) * this.d > this.store.length) {
      const grown = new Float32Array(this.store.length * 2);
      grown.set(this.store);
      this.store = grown;
    }
    this.slots.set(key, s);
    return s;
  }
}
