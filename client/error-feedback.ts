/**
 * Error feedback for lossy pushes (F16, Q8; PROTOCOL.md §3.4): what quantising a push leaves out
 * is kept and added to this worker's next push of the same keys, so over a run every gradient
 * reaches the servers in full, only later (Seide et al. 2014; Karimireddy et al. 2019).
 *
 * A worker pushes the same key lists again and again (a shard's working set, cut per node), so
 * residuals are kept per **stream** — one node's part of one key list, named by the list's hash
 * (or its range) — as one array in the part's key order: adding and keeping them costs a pass
 * over the values, no lookup per key. A key in two shards' lists has a residual in each stream,
 * each sent with its own list's next push. One per table of a worker, in memory for its life;
 * bounded: past `maxFloats` floats in all, the least recently pushed streams are dropped (their
 * quantisation error lost, as without feedback).
 */
import { type PackedValues, packValues, type ValueCodec } from '../shared/protocol/values.ts';

/** Residual floats a table keeps by default (4 Mi: 16 MiB). */
export const DEFAULT_FEEDBACK_FLOATS = 4 * 1024 * 1024;

export class ErrorFeedback {
  /** Stream → its residual, in least-recently-pushed-first order. */
  private readonly streams = new Map<string, Float32Array>();
  private floats = 0;

  constructor(private readonly maxFloats = DEFAULT_FEEDBACK_FLOATS) {}

  /** Streams holding a residual. */
  get size(): number {
    return this.streams.size;
  }

  /** Sum of |residual| over every stream (what is still owed to the servers). */
  owed(): number {
    let s = 0;
    for (const r of this.streams.values()) for (let i = 0; i < r.length; i++) s += Math.abs(r[i]);
    return s;
  }

  /**
   * Packs `values` (one stream's push, in its key order) as `codec`, the stream's residual added
   * first; keeps the new residual and writes what the node will read into `got` (same length).
   * With a filter (the significantly-modified filter: `threshold`, or `rms` times the root mean
   * square of the sums, whichever is larger) a sum below it in magnitude is sent as 0 and kept
   * whole in the residual. A stream whose length changed starts afresh.
   */
  pack(
    stream: string,
    values: Float32Array,
    codec: ValueCodec,
    got: Float32Array,
    filter: { threshold?: number; rms?: number } = {},
  ): PackedValues {
    let r = this.streams.get(stream);
    if (r !== undefined) {
      this.streams.delete(stream); // re-inserted below: most recently pushed
      if (r.length !== values.length) {
        this.floats -= r.length;
        r = undefined;
      }
    }
    const want = new Float32Array(values.length);
    if (r) for (let i = 0; i < want.length; i++) want[i] = values[i] + r[i];
    else want.set(values);
    let send = want;
    let threshold = filter.threshold ?? 0;
    if (filter.rms && want.length > 0) {
      let ss = 0;
      for (let i = 0; i < want.length; i++) ss += want[i] * want[i];
      threshold = Math.max(threshold, filter.rms * Math.sqrt(ss / want.length));
    }
    if (threshold > 0) {
      send = new Float32Array(want.length);
      for (let i = 0; i < want.length; i++) if (Math.abs(want[i]) >= threshold) send[i] = want[i];
    }
    const packed = packValues(send, codec, got);
    if (!r) {
      if (values.length > this.maxFloats) return packed;
      r = new Float32Array(values.length);
      this.floats += r.length;
    }
    for (let i = 0; i < want.length; i++) {
      const d = want[i] - got[i];
      // A non-finite push is refused by the node; its residual must not poison the next ones.
      r[i] = d - d === 0 ? d : 0;
    }
    this.streams.set(stream, r);
    for (const [name, old] of this.streams) {
      if (this.floats <= this.maxFloats) break;
      this.streams.delete(name);
      this.floats -= old.length;
    }
    return packed;
  }
}
