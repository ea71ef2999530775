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
 *
 * A push's values are checked in one pass (scanValues): finite, then within the spec's `bounds`
 * (largest |v|, L2 norm of the frame), else refused whole with TS_ERR_NON_FINITE or
 * TS_ERR_PUSH_BOUND before anything changes (an untrusted worker's push, docs/architecture.md).
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
import { HeldPushes, type HeldStats } from './held.ts';
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
  /** Pushes refused for breaking one of the table's bounds (TS_ERR_PUSH_BOUND). */
  bounded: number;
  /** A holding table's held pushes (spec `hold`). */
  held?: HeldStats;
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
  private bounded = 0;
  /** scanValues' output: Σv² and max |v| of the push being checked. */
  private readonly scan = new Float64Array(2);
  /** State arrays the updater keeps per value (rows carry 1 + stateSlots floats per value). */
  readonly stateSlots: number;
  /** The pushes of tasks held until their iteration's CLOCK (spec `hold`), or null: applied as they land. */
  readonly held: HeldPushes | null;
  /** The values of the push `push` held last, for any subset of its keys (its FORWARD down the chain). */
  lastHeld: ((sub: KvKeys) => Float32Array) | null = null;

  constructor(readonly spec: TableSpec) {
    const updater = createUpdater(spec.updater, spec.params);
    this.stateSlots = updater.stateSlots;
    this.dense = spec.kind === 'dense' ? new DenseStore(spec.valueLength, spec.init, updater, spec.keySpace) : null;
    this.sparse = spec.kind === 'sparse' ? new SparseStore(spec.valueLength, spec.init, updater) : null;
    this.held = spec.hold ? new HeldPushes(spec.hold, spec.valueLength) : null;
  }

  /** Whether a push under `task` is held rather than applied (PROTOCOL.md §6 TABLE `hold`). */
  holds(task: TaskStamp | null): boolean {
    return this.held !== null && task !== null && task.task !== 0;
  }

  /** FENCE: pushes of `task` from attempts below `attempt` are refused; held ones are dropped and their seqs forgotten. */
  fence(task: number, attempt: number): void {
    this.dedupe.fence(task, attempt);
    if (this.held) this.dedupe.forget(task, this.held.drop(task, attempt));
  }

  /**
   * CLOCK `clock`: applies the aggregate of every held iteration below it — a key's estimate as
   * many times as it had rows, in pushes of the keys that had more than r rows, r = 0, 1, …;
   * returns the keys it changed (for the replicas), or null when nothing was held.
   */
  release(clock: number): Float64Array | null {
    const agg = this.held?.release(clock) ?? null;
    if (agg === null) return null;
    for (const { keys, values } of agg.passes()) {
      this.step++;
      this.applied++;
      if (this.sparse) this.sparse.push(keys, values, this.step);
      else this.dense!.pushKeys(keys, values, this.step);
    }
    return agg.keys;
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
   * Throws (without changing anything) on a bad shape, a value that is not finite, values over
   * the table's bounds, or a dead lease.
   */
  push(keys: KvKeys, values: Float32Array, task: TaskStamp | null): boolean {
    const n = this.count(keys);
    const d = this.spec.valueLength;
    if (values.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${values.length} values for ${n} keys x ${d}`);
    this.checkValues(values);
    if (task && this.dedupe.seen(task)) {
      this.duplicates++;
      return false;
    }
    if (this.holds(task)) {
      this.lastHeld = this.held!.add(task!, keyList(keys), values);
      this.dedupe.record(task!);
      return true;
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

  /** TS_ERR_NON_FINITE for a NaN or ±Infinity, then TS_ERR_PUSH_BOUND for values over a bound. */
  private checkValues(values: Float32Array): void {
    const scan = this.scan;
    scanValues(values, scan);
    const sq = scan[0];
    if (!Number.isFinite(sq)) {
      const bad = firstNonFinite(values);
      throw new TabshardError('TS_ERR_NON_FINITE', `value ${bad} is ${values[bad]}`);
    }
    const b = this.spec.bounds;
    if (b === undefined) return;
    if (b.value !== undefined && scan[1] > b.value) {
      this.bounded++;
      const at = firstAbove(values, b.value);
      throw new TabshardError('TS_ERR_PUSH_BOUND', `value bound ${b.value}: |value ${at}| is ${Math.abs(values[at])}`);
    }
    const norm = Math.sqrt(sq);
    if (b.norm !== undefined && norm > b.norm) {
      this.bounded++;
      throw new TabshardError(
        'TS_ERR_PUSH_BOUND',
        `norm bound ${b.norm}: the L2 norm of ${values.length} values is ${norm}`,
      );
    }
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
    this.dropRanges([[begin, end]]);
  }

  /** Forgets the keys of `ranges`, sorted disjoint [begin, end) pairs (a sparse table cuts each block once). */
  dropRanges(ranges: ReadonlyArray<readonly [number, number]>): void {
    for (let i = 0; i < ranges.length; i++) {
      checkRange(ranges[i][0], ranges[i][1], this.spec.keySpace);
      if (i > 0 && ranges[i][0] < ranges[i - 1][1])
        throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'ranges to drop must be sorted and disjoint');
    }
    if (this.dense) for (const [b, e] of ranges) this.dense.dropRange(b, e);
    else this.sparse!.dropRanges(ranges);
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
      bounded: this.bounded,
      ...(this.held ? { held: this.held.status() } : {}),
    };
  }
}

/** The keys as one sorted list (ranges spelled out). */
export function keyList(keys: KvKeys): Float64Array {
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
 * One pass over a push's values: out[0] = Σv² (in float64), out[1] = max |v|. Hot loop.
 * Σv² is finite exactly when every value is: a float32 squares to at most ~1.2e77, so no sum of
 * finite values overflows a double, and NaN or ±Infinity survives any sum — so this is also the
 * finiteness check (it replaced four sums of x·0). Independent sums and maxima keep the float
 * pipeline busy; after a NaN the maximum means nothing, but then the caller looks no further.
 * bench/push-check.ts: ~1.0 ms per 1M floats here, ~0.3 ms more than the x·0 sums alone.
 */
export function scanValues(v: Float32Array, out: Float64Array): void {
  const n = v.length & ~3;
  let s0 = 0;
  let s1 = 0;
  let m0 = 0;
  let m1 = 0;
  let i = 0;
  for (; i < n; i += 4) {
    const x0 = v[i];
    const x1 = v[i + 1];
    const x2 = v[i + 2];
    const x3 = v[i + 3];
    s0 += x0 * x0 + x1 * x1;
    s1 += x2 * x2 + x3 * x3;
    const a0 = Math.abs(x0);
    const a1 = Math.abs(x1);
    const a2 = Math.abs(x2);
    const a3 = Math.abs(x3);
    if (a0 > m0) m0 = a0;
    if (a1 > m1) m1 = a1;
    if (a2 > m0) m0 = a2;
    if (a3 > m1) m1 = a3;
  }
  for (; i < v.length; i++) {
    const x = v[i];
    s0 += x * x;
    const a = Math.abs(x);
    if (a > m0) m0 = a;
  }
  out[0] = s0 + s1;
  out[1] = Math.max(m0, m1);
}

/** Index of the first NaN or ±Infinity, or -1 (only a refused push pays for this second loop). */
function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return i;
  return -1;
}

/** Index of the first value with |v| > bound (a refused push's detail). */
function firstAbove(v: Float32Array, bound: number): number {
  let i = 0;
  while (i < v.length && !(Math.abs(v[i]) > bound)) i++;
  return i;
}
