/**
 * A table's held pushes on its master (shared/aggregate.ts, PROTOCOL.md §6 TABLE `hold`): pushes
 * of tasks are kept by iteration — copies of their keys and values — instead of applied; a FENCE
 * drops the held pushes of the attempts it fences (a lease taken back, a TASK_DONE refused: they
 * never reach the model, and their seqs are forgotten so the task's re-run applies its own); a
 * CLOCK past an iteration releases it as one aggregate per key.
 *
 * Held pushes go down the chain as they came (FORWARD with flag HELD, PROTOCOL.md §5.3) and every
 * chain member releases its own copy at CLOCK: the same pushes in the same order give the same
 * aggregate, and a replica promoted after its master died releases what the master held.
 *
 * Not yet: a node does not move its held pushes when keys migrate (join or drain while an
 * iteration is held), and checkpoints do not carry them.
 */
import { type AggregateScratch, aggregateRows, aggregateScratch, type HoldSpec } from '../../shared/aggregate.ts';
import type { TaskStamp } from '../../shared/protocol/frame.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';

interface HeldPush {
  task: number;
  attempt: number;
  seq: number;
  keys: Float64Array;
  values: Float32Array;
}

/** An iteration's aggregate: per key (sorted), the estimate and how many rows it had. */
export interface Aggregate {
  keys: Float64Array;
  values: Float32Array;
  counts: Uint32Array;
  /** The pushes that apply it: pass r holds the keys with more than r rows (each a sorted list). */
  passes(): Iterable<{ keys: Float64Array; values: Float32Array }>;
}

function* passes(keys: Float64Array, values: Float32Array, counts: Uint32Array, d: number) {
  for (let r = 0; keys.length > 0; r++) {
    yield { keys, values };
    let m = 0;
    for (let i = 0; i < keys.length; i++) if (counts[i] > r + 1) m++;
    const k2 = new Float64Array(m);
    const v2 = new Float32Array(m * d);
    const c2 = new Uint32Array(m);
    for (let i = 0, j = 0; i < keys.length; i++)
      if (counts[i] > r + 1) {
        k2[j] = keys[i];
        c2[j] = counts[i];
        v2.set(values.subarray(i * d, (i + 1) * d), j * d);
        j++;
      }
    keys = k2;
    values = v2;
    counts = c2;
  }
}

/** The values (d per key) of `sub`, a subset of the sorted `keys` whose values are `values`. */
export function valuesFor(keys: Float64Array, values: Float32Array, d: number, sub: KvKeys): Float32Array {
  const want: number[] = [];
  if (sub.kind === 'list') for (const k of sub.keys) want.push(k);
  else {
    const b = sub.kind === 'range' ? [sub.begin, sub.end] : Array.from(sub.bounds);
    for (let i = 0; i < b.length; i += 2) for (let k = b[i]; k < b[i + 1]; k++) want.push(k);
  }
  const out = new Float32Array(want.length * d);
  let at = 0;
  want.forEach((k, w) => {
    while (at < keys.length && keys[at] < k) at++;
    out.set(values.subarray(at * d, (at + 1) * d), w * d);
  });
  return out;
}

export interface HeldStats {
  /** Pushes held now, and the bytes their copies take. */
  pushes: number;
  bytes: number;
  /** Iterations released, and the pushes dropped by fences, since the node started. */
  released: number;
  dropped: number;
}

export class HeldPushes {
  private readonly byIteration = new Map<number, HeldPush[]>();
  private readonly scratch: AggregateScratch = aggregateScratch();
  private readonly stats: HeldStats = { pushes: 0, bytes: 0, released: 0, dropped: 0 };

  constructor(
    readonly spec: HoldSpec,
    private readonly d: number,
  ) {}

  iterationOf(task: number): number {
    return Math.floor((task - 1) / this.spec.tasksPerIteration);
  }

  /**
   * Holds a checked push of `stamp` (its keys sorted, `keys` and `values` copied); returns its
   * values for any subset of its keys (what a FORWARD down the chain carries).
   */
  add(stamp: TaskStamp, keys: Float64Array, values: Float32Array): (sub: KvKeys) => Float32Array {
    const i = this.iterationOf(stamp.task);
    let list = this.byIteration.get(i);
    if (list === undefined) {
      list = [];
      this.byIteration.set(i, list);
    }
    const p = { task: stamp.task, attempt: stamp.attempt, seq: stamp.seq, keys: keys.slice(), values: values.slice() };
    list.push(p);
    this.stats.pushes++;
    this.stats.bytes += p.keys.byteLength + p.values.byteLength;
    return (sub) => valuesFor(p.keys, p.values, this.d, sub);
  }

  /** Drops the held pushes of `task` from attempts below `attempt`; returns their seqs. */
  drop(task: number, attempt: number): number[] {
    const list = this.byIteration.get(this.iterationOf(task));
    if (list === undefined) return [];
    const seqs: number[] = [];
    const kept = list.filter((p) => {
      if (p.task !== task || p.attempt >= attempt) return true;
      seqs.push(p.seq);
      this.stats.pushes--;
      this.stats.bytes -= p.keys.byteLength + p.values.byteLength;
      this.stats.dropped++;
      return false;
    });
    this.byIteration.set(this.iterationOf(task), kept);
    return seqs;
  }

  /**
   * Takes every iteration below `clock` out and returns its aggregate — sorted unique keys, the
   * rule's estimate (d values per key) and how many rows each key had — or null when nothing was
   * held there.
   */
  release(clock: number): Aggregate | null {
    const pushes: HeldPush[] = [];
    for (const [i, list] of this.byIteration)
      if (i < clock) {
        pushes.push(...list);
        this.byIteration.delete(i);
        this.stats.released++;
      }
    for (const p of pushes) {
      this.stats.pushes--;
      this.stats.bytes -= p.keys.byteLength + p.values.byteLength;
    }
    if (pushes.length === 0) return null;
    // A merge of the pushes' key lists (each sorted and unique, the decoder saw to it): at each
    // step the smallest key under the cursors, with the row of every push that carries it.
    const d = this.d;
    const P = pushes.length;
    const at = new Uint32Array(P);
    let m = 0;
    for (const p of pushes) m += p.keys.length;
    const outKeys = new Float64Array(m);
    const outValues = new Float32Array(m * d);
    const outCounts = new Uint32Array(m);
    let group = new Float32Array(Math.max(1, P) * d);
    let u = 0;
    for (;;) {
      let min = Number.POSITIVE_INFINITY;
      for (let q = 0; q < P; q++)
        if (at[q] < pushes[q].keys.length && pushes[q].keys[at[q]] < min) min = pushes[q].keys[at[q]];
      if (min === Number.POSITIVE_INFINITY) break;
      let n = 0;
      for (let q = 0; q < P; q++) {
        const p = pushes[q];
        if (at[q] < p.keys.length && p.keys[at[q]] === min) {
          if (group.length < (n + 1) * d) {
            const g = new Float32Array(2 * group.length);
            g.set(group);
            group = g;
          }
          group.set(p.values.subarray(at[q] * d, (at[q] + 1) * d), n * d);
          n++;
          at[q]++;
        }
      }
      outKeys[u] = min;
      outCounts[u] = n;
      aggregateRows(this.spec, group, (g) => g * d, n, d, outValues, u * d, this.scratch);
      u++;
    }
    const keys = outKeys.slice(0, u);
    const values = outValues.slice(0, u * d);
    const counts = outCounts.slice(0, u);
    return { keys, values, counts, passes: () => passes(keys, values, counts, d) };
  }

  status(): HeldStats {
    return { ...this.stats };
  }
}
