/**
 * An in-process run of a sparse logistic-regression job: the real server-side updater applied to
 * a local copy of the weights table, tasks (shard × iteration) run one after another with a
 * configurable push lag to imitate parallel workers and bounded staleness, held-out evaluation
 * after every iteration. The gradient function is passed in (the tfjs one in tests and benches,
 * the plain-JS reference where tfjs is not wanted). Used by tests, benches and hyper-parameter
 * choices; the distributed job runs the same loop across tabs and server nodes.
 */

import { createUpdater } from '../../server/updaters/index.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';
import type { TableSpec } from '../../shared/table.ts';
import { countNonZero, evaluateLogreg } from './eval.ts';

/** The compute step: gradient of a shard's summed log-loss at the pulled weights. */
export type GradientFn = (
  shard: DecodedShard,
  weights: Float32Array,
) => Promise<{ grad: Float32Array; loss: number; examples: number }>;

export interface TrainOptions {
  /** The weights table (valueLength 1, zeros init); its updater and params are used. */
  table: TableSpec;
  shards: readonly DecodedShard[];
  heldout: DecodedShard;
  iterations: number;
  gradient: GradientFn;
  /**
   * How many later tasks pull before a task's push is applied. 0: every pull sees every earlier
   * push. shards − 1: every task of an iteration pulls before any of its pushes (BSP with one
   * worker per shard). (τ + 1) · shards − 1: bounded delay τ with one worker per shard.
   */
  lag?: number;
}

export interface IterationReport {
  iteration: number;
  /** Summed training loss of the iteration's tasks divided by their examples (at pulled weights). */
  trainLoss: number;
  /** Held-out evaluation of the weights after the iteration's applied pushes. */
  logLoss: number;
  accuracy: number;
  /** Non-zero weights in the table. */
  nonZero: number;
}

/** Runs the job in process; returns one report per iteration. */
export async function trainLogreg(o: TrainOptions): Promise<IterationReport[]> {
  const { table } = o;
  if (table.valueLength !== 1) throw new Error('trainLogreg: valueLength must be 1');
  const updater = createUpdater(table.updater, table.params);
  // A map from key to slot keeps memory proportional to the keys the data touches.
  const slot = new Map<number, number>();
  for (const s of [...o.shards, o.heldout]) for (const k of s.keys) if (!slot.has(k)) slot.set(k, slot.size);
  const values = new Float32Array(slot.size);
  const state = updater.stateInit.map((v) => new Float32Array(slot.size).fill(v));
  const slotsOf = new Map<DecodedShard, Uint32Array>();
  const slots = (s: DecodedShard) => {
    let r = slotsOf.get(s);
    if (!r) {
      r = Uint32Array.from(s.keys, (k) => slot.get(k)!);
      slotsOf.set(s, r);
    }
    return r;
  };
  const pull = (s: DecodedShard) => {
    const idx = slots(s);
    return Float32Array.from(idx, (i) => values[i]);
  };
  let step = 0;
  const push = (s: DecodedShard, grad: Float32Array) => {
    // What a server does per push: gather the keys' values and state, run the updater, scatter.
    const idx = slots(s);
    const v = Float32Array.from(idx, (i) => values[i]);
    const st = state.map((a) => Float32Array.from(idx, (i) => a[i]));
    updater.apply(v, st, grad, ++step);
    for (let j = 0; j < idx.length; j++) {
      values[idx[j]] = v[j];
      for (let k = 0; k < st.length; k++) state[k][idx[j]] = st[k][j];
    }
  };
  const lag = o.lag ?? 0;
  const pending: { s: DecodedShard; grad: Float32Array }[] = [];
  const reports: IterationReport[] = [];
  for (let it = 0; it < o.iterations; it++) {
    let loss = 0;
    let examples = 0;
    for (const s of o.shards) {
      const g = await o.gradient(s, pull(s));
      loss += g.loss;
      examples += g.examples;
      pending.push({ s, grad: g.grad });
      while (pending.length > lag) {
        const p = pending.shift()!;
        push(p.s, p.grad);
      }
    }
    if (it === o.iterations - 1) for (const p of pending.splice(0)) push(p.s, p.grad);
    const ev = evaluateLogreg(o.heldout, pull(o.heldout));
    reports.push({
      iteration: it,
      trainLoss: examples ? loss / examples : 0,
      logLoss: ev.logLoss,
      accuracy: ev.accuracy,
      nonZero: countNonZero(values),
    });
  }
  return reports;
}
