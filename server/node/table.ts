/**
 * A table on one server node: its spec, store (dense pages or sparse blocks), updater, push
 * de-duplication and counters. Keys arriving here are already sorted and unique (the decoder
 * guarantees it); this layer checks them against the table's key space and value length.
 *
 * Rows (rows.ts) are a table's full per-key state for replication, migration and checkpoints:
 * for n keys, n*d*(1+S) floats (S = stateSlots), slot-major — [0, n*d) the values in key
 * order, then n*d floats per updater state slot — read and written without running the updater.
 * `steps` is the push counter the updater sees as its step (Adam's bias correction); a copy of a
 * table takes it over with `advanceSteps`.
 */
import { TabshardError } from '../../shared/errors.ts';
import { checkRange } from '../../shared/keys.ts';
import type { BufferPool } from '../../shared/pool.ts';
import type { TaskStamp } from '../../shared/protocol/frame.ts';
import { countKeys, type KvKeys, keysEnd } from '../../shared/protocol/kv.ts';
import type { TableSpec } from '../../shared/table.ts';
import { createUpdater } from '../updaters/index.ts';
import { PushDedupe } from './dedupe.ts';
import { DenseStore } from './dense-store.ts';
import { EXPORT_KEYS, type RowChunk, rowsLength } from './rows.ts';
import { SparseStore } from './sparse-store.ts';

export interface TableStats {
  name: string;
  kind: string;
  keys: number;
  bytes: number;
  pushes: number;
  pulls: number;
  duplicates: number;
}

export class Table {
  readonly dedupe = new PushDedupe();
  private readonly dense: DenseStore | null;
  private readonly sparse: SparseStore | null;
  private step = 0;
  /** Pushes this node applied with the updater (stats; a replica's writes do not count). */
  private applied = 0;
  private pulls = 0;
  private duplicates = 0;
  /** State arrays the updater keeps per value (rows carry 1 + stateSlots floats per value). */
  readonly stateSlots: number;

  constructor(readonly spec: TableSpec) {
    const updater = createUpdater(spec.updater, spec.params);
    this.stateSlots = updater.stateSlots;
    this.dense = spec.kind === 'dense' ? new DenseStore(spec.valueLength, spec.init, updater, spec.keySpace) : null;
    this.sparse = spec.kind === 'sparse' ? new SparseStore(spec.valueLength, spec.init, updater) : null;
  }

  /** Checks keys against the key space and returns how many keys they name. */
  count(keys: KvKeys): number {
    const end = keysEnd(keys);
    if (end > this.spec.keySpace)
      throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `key ${end - 1} >= ${this.spec.keySpace}`);
    return countKeys(keys);
  }

  /**
   * Applies a push at most once. Returns false when it was a duplicate (nothing changed).
   * Throws (without changing anything) on a bad shape, a value that is not finite, or a dead lease.
   */
  push(keys: KvKeys, values: Float32Array, task: TaskStamp | null): boolean {
    const n = this.count(keys);
    const d = this.spec.valueLength;
    if (values.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${values.length} values for ${n} keys x ${d}`);
    const bad = firstNonFinite(values);
    if (bad >= 0) throw new TabshardError('TS_ERR_NON_FINITE', `value ${bad} is ${values[bad]}`);
    if (task && this.dedupe.seen(task)) {
      this.duplicates++;
      return false;
    }
    this.step++;
    this.applied++;
    if (this.sparse) this.sparse.push(keyList(keys), values, this.step);
    else if (keys.kind === 'list') this.dense!.pushKeys(keys.keys, values, this.step);
    else
      forEachRange(keys, (begin, end, at) =>
        this.dense!.pushRange(begin, end, values.subarray(at * d, (at + end - begin) * d), this.step),
      );
    if (task) this.dedupe.record(task);
    return true;
  }

  /**
   * Values for the keys, as parts and a release hook to run once they are sent (the transport's
   * onSent): dense ranges are zero-copy page views; other pulls are copied into an array lent by
   * `pool`, when given.
   */
  pull(keys: KvKeys, pool?: BufferPool): { parts: Float32Array[]; release?: () => void } {
    this.pulls++;
    return this.read(keys, pool);
  }

  /** `pull` without counting it as one (a publication to a subscriber reads this way). */
  read(keys: KvKeys, pool?: BufferPool): { parts: Float32Array[]; release?: () => void } {
    const n = this.count(keys);
    if (this.dense && keys.kind === 'range') return this.dense.pullRange(keys.begin, keys.end);
    if (this.dense && keys.kind === 'ranges') {
      const reads: Array<{ parts: Float32Array[]; release: () => void }> = [];
      forEachRange(keys, (begin, end) => reads.push(this.dense!.pullRange(begin, end)));
      return { parts: reads.flatMap((r) => r.parts), release: releaseAll(reads) };
    }
    const len = n * this.spec.valueLength;
    const out = pool ? new Float32Array(pool.take(4 * len).buffer, 0, len) : new Float32Array(len);
    if (this.dense) this.dense.pullKeys(keyList(keys), out);
    else this.sparse!.pull(keyList(keys), out);
    return { parts: [out], release: pool && giver(pool, out) };
  }

  /** Pushes applied so far: the step the last push gave the updater. */
  get steps(): number {
    return this.step;
  }

  /** Raises the push counter to `atLeast` (never lowers it): a replica takes over its master's. */
  advanceSteps(atLeast: number): void {
    if (!Number.isSafeInteger(atLeast) || atLeast < 0)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `step ${atLeast} is not an integer >= 0`);
    if (atLeast > this.step) this.step = atLeast;
  }

  /** The rows (values and updater state, layout above) of the keys; unstored keys read as initial. */
  rows(keys: KvKeys): Float32Array {
    this.count(keys);
    if (this.dense && keys.kind === 'range') return this.dense.readRowsRange(keys.begin, keys.end);
    return this.dense ? this.dense.readRows(keyList(keys)) : this.sparse!.readRows(keyList(keys));
  }

  /** Sets values and updater state of the keys to `rows` (layout above) as they are. */
  writeRows(keys: KvKeys, rows: Float32Array): void {
    const n = this.count(keys);
    const len = rowsLength(n, this.spec.valueLength, this.stateSlots);
    if (rows.length !== len)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${rows.length} floats of rows for ${len} (${n} keys)`);
    if (this.dense && keys.kind === 'range') this.dense.writeRowsRange(keys.begin, keys.end, rows);
    else if (this.dense) this.dense.writeRows(keyList(keys), rows);
    else this.sparse!.writeRows(keyList(keys), rows);
  }

  /**
   * What this node holds of keys [begin, end), as copies, in key order and chunks of at most
   * `maxKeys` keys: sparse, the stored keys as lists; dense, the allocated pages as ranges.
   * Keys left out read as their initial value and state.
   */
  exportRange(begin: number, end: number, maxKeys = EXPORT_KEYS): RowChunk[] {
    checkRange(begin, end, this.spec.keySpace);
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `maxKeys ${maxKeys} is not an integer >= 1`);
    return (this.dense ?? this.sparse!).exportRange(begin, end, maxKeys);
  }

  /** Forgets keys [begin, end): afterwards they read as their initial value and state. */
  dropRange(begin: number, end: number): void {
    checkRange(begin, end, this.spec.keySpace);
    (this.dense ?? this.sparse!).dropRange(begin, end);
  }

  stats(): TableStats {
    const keys = this.dense ? this.dense.allocatedFloats / this.spec.valueLength : this.sparse!.size;
    const bytes = this.dense ? this.dense.allocatedFloats * 4 : this.sparse!.size * (8 + 4 * this.spec.valueLength);
    return {
      name: this.spec.name,
      kind: this.spec.kind,
      keys,
      bytes,
      pushes: this.applied,
      pulls: this.pulls,
      duplicates: this.duplicates,
    };
  }
}

/** The keys as one sorted list (ranges spelled out). */
function keyList(keys: KvKeys): Float64Array {
  if (keys.kind === 'list') return keys.keys;
  const out = new Float64Array(countKeys(keys));
  forEachRange(keys, (begin, end, at) => {
    for (let k = begin; k < end; k++) out[at + k - begin] = k;
  });
  return out;
}

/** Calls `fn(begin, end, at)` for each range of a range or ranges segment; `at` is its first key's offset. */
function forEachRange(keys: KvKeys, fn: (begin: number, end: number, at: number) => void): void {
  if (keys.kind === 'range') {
    fn(keys.begin, keys.end, 0);
    return;
  }
  if (keys.kind !== 'ranges') return;
  const b = keys.bounds;
  for (let i = 0, at = 0; i < b.length; i += 2) {
    fn(b[i], b[i + 1], at);
    at += b[i + 1] - b[i];
  }
}

/** Ends the loans of several dense reads at once. */
function releaseAll(reads: ReadonlyArray<{ release: () => void }>): () => void {
  return () => {
    for (const r of reads) r.release();
  };
}

/** Gives `out` back to `pool` (returned, not declared: tsx would name a declared closure per call). */
function giver(pool: BufferPool, out: Float32Array): () => void {
  return () => pool.give(out);
}

/**
 * Index of the first NaN or ±Infinity, or -1. Hot loop: x * 0 is 0 for every finite x and NaN
 * otherwise, and NaN survives any sum; four independent sums keep the float pipeline busy
 * (0.5 ms per 1M floats here, half the cost of a loop over the float bits). Only a push that
 * holds a bad value pays for the second loop that finds it.
 */
function firstNonFinite(v: Float32Array): number {
  const n = v.length & ~3;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i < n; i += 4) {
    a += v[i] * 0;
    b += v[i + 1] * 0;
    c += v[i + 2] * 0;
    d += v[i + 3] * 0;
  }
  for (; i < v.length; i++) a += v[i] * 0;
  if (a + b + c + d === 0) return -1;
  for (i = 0; Number.isFinite(v[i]); i++);
  return i;
}
