/**
 * A table held in process, for in-process training runs (apps/textnn/train.ts; apps/logreg/train.ts keeps
 * its own copy of the same loop for now): initial values from the table's initializer exactly as
 * a server node computes them (server/node/init.ts), the real server-side updater created from
 * the spec, and per push what a server does — gather the pushed rows' values and updater state,
 * apply the updater with the table's push count as its step, scatter back. Rows of any value
 * length; memory proportional to the keys the data touches, not the key space.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import { fillInit } from '../node/init.ts';
import { createUpdater, type Updater } from './index.ts';

export class LocalTable {
  readonly spec: TableSpec;
  readonly d: number;
  /** Values of every slot, slot i at [i·d, (i+1)·d). */
  readonly values: Float32Array;
  private readonly updater: Updater;
  private readonly state: Float32Array[];
  private readonly slot = new Map<number, number>();
  private readonly slotsOf = new WeakMap<Float64Array, Uint32Array>();
  private step = 0;

  /** A table holding the given keys (any order, duplicates allowed), at their initial values. */
  constructor(spec: TableSpec, keys: Iterable<number>) {
    this.spec = spec;
    this.d = spec.valueLength;
    this.updater = createUpdater(spec.updater, spec.params);
    const order: number[] = [];
    for (const k of keys) {
      if (this.slot.has(k)) continue;
      if (!Number.isInteger(k) || k < 0 || k >= spec.keySpace)
        throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `key ${k} outside [0, ${spec.keySpace})`);
      this.slot.set(k, order.length);
      order.push(k);
    }
    const n = order.length * this.d;
    this.values = new Float32Array(n);
    fillInit(spec.init, this.values, 0, order.length, this.d, (i) => order[i]);
    this.state = this.updater.stateInit.map((v) => new Float32Array(n).fill(v));
  }

  /** Pushes applied so far (the updater's step of the last push). */
  get pushes(): number {
    return this.step;
  }

  /** Slot of each key of a sorted key list, cached per array. */
  private slots(keys: Float64Array): Uint32Array {
    let r = this.slotsOf.get(keys);
    if (r === undefined) {
      r = new Uint32Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const s = this.slot.get(keys[i]);
        if (s === undefined) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `key ${keys[i]} not held locally`);
        r[i] = s;
      }
      this.slotsOf.set(keys, r);
    }
    return r;
  }

  /** The rows of `keys` (keys.length · d floats, in key order): what a pull returns. */
  pull(keys: Float64Array): Float32Array {
    return this.gather(this.values, this.slots(keys));
  }

  /** Rows `idx` of a per-slot array (values or an updater state slot), packed. */
  private gather(from: Float32Array, idx: Uint32Array): Float32Array {
    const d = this.d;
    const out = new Float32Array(idx.length * d);
    // A plain loop: a subarray per row costs more than copying the row (d is small).
    for (let i = 0, o = 0; i < idx.length; i++) for (let k = 0, s = idx[i] * d; k < d; k++) out[o++] = from[s + k];
    return out;
  }

  /** Applies one push of `grad` (keys.length · d floats) to the rows of `keys` with the updater. */
  push(keys: Float64Array, grad: Float32Array): void {
    const idx = this.slots(keys);
    const d = this.d;
    if (grad.length !== idx.length * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${grad.length} floats for ${idx.length} keys × ${d}`);
    const v = this.gather(this.values, idx);
    const st = this.state.map((a) => this.gather(a, idx));
    this.updater.apply(v, st, grad, ++this.step);
    const scatter = (to: Float32Array, from: Float32Array) => {
      for (let i = 0, o = 0; i < idx.length; i++) for (let k = 0, at = idx[i] * d; k < d; k++) to[at + k] = from[o++];
    };
    scatter(this.values, v);
    for (let k = 0; k < st.length; k++) scatter(this.state[k], st[k]);
  }
}

/**
 * Applies pushes `lag` tasks late: `add` queues a push and applies the oldest while more than
 * `lag` wait, so the next `lag` tasks pull before it lands (parallel stale workers); `flush`
 * applies the rest.
 */
export function laggedPushes(lag: number): { add(apply: () => void): void; flush(): void } {
  if (!Number.isInteger(lag) || lag < 0)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'lag must be an integer >= 0');
  const pending: (() => void)[] = [];
  return {
    add(apply) {
      pending.push(apply);
      while (pending.length > lag) pending.shift()!();
    },
    flush() {
      for (const p of pending.splice(0)) p();
    },
  };
}
