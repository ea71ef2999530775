/**
 * An in-process run of the text-classifier job (apps/textnn/model.ts): the real
 * server-side updaters applied to local copies of its two tables (local-table.ts), tasks
 * (shard × iteration) run one after another with a configurable push lag to imitate parallel
 * workers and bounded staleness, held-out evaluation after every iteration. The gradient function
 * is passed in (the tfjs one in benches and tests, or the plain-JS reference). The same loop as
 * trainLogreg (train.ts), for vector-valued rows and two tables.
 */

import { LocalTable, laggedPushes } from '../../server/updaters/local-table.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import { evaluateTextnn } from './eval.ts';
import { denseSize, type TextnnConfig } from './model.ts';

/** The compute step: gradient of a shard's summed log-loss at the pulled parameters. */
export type TextnnGradientFn = (
  shard: DecodedShard,
  emb: Float32Array,
  dense: Float32Array,
) => Promise<{ gradEmb: Float32Array; gradDense: Float32Array; loss: number; examples: number }>;

export interface TextnnTrainOptions {
  /** [embedding (valueLength dim), dense (keySpace P, valueLength 1)]; their updaters and inits are used. */
  tables: readonly TableSpec[];
  model: TextnnConfig;
  shards: readonly DecodedShard[];
  heldout: DecodedShard;
  iterations: number;
  gradient: TextnnGradientFn;
  /**
   * How many later tasks pull before a task's push is applied (as in trainLogreg). 0: tasks in
   * turn; shards − 1: BSP with one worker per shard; (τ + 1) · shards − 1: bounded delay τ.
   */
  lag?: number;
  /** Called after each iteration's evaluation (for benches that print as they go). */
  onIteration?: (r: TextnnIterationReport) => void;
}

export interface TextnnIterationReport {
  iteration: number;
  /** Summed training loss of the iteration's tasks divided by their examples (at pulled values). */
  trainLoss: number;
  /** Held-out evaluation after the iteration's applied pushes. */
  logLoss: number;
  accuracy: number;
  /** Wall milliseconds since the run started, at the end of this iteration's evaluation. */
  ms: number;
}

/** TS_ERR_INVALID_ARGUMENT unless the two tables fit the model shape. */
export function checkTextnnTables(tables: readonly TableSpec[], model: TextnnConfig): [TableSpec, TableSpec] {
  const [emb, dense] = tables;
  const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `textnn tables: ${why}`);
  if (tables.length !== 2) throw bad('expected [embedding, dense]');
  if (emb.valueLength !== model.dim) throw bad(`embedding valueLength ${emb.valueLength} ≠ dim ${model.dim}`);
  const P = denseSize(model);
  if (dense.valueLength !== 1 || dense.keySpace !== P) throw bad(`dense table must have ${P} keys of valueLength 1`);
  return [emb, dense];
}

/** Runs the job in process; returns one report per iteration. */
export async function trainTextnn(o: TextnnTrainOptions): Promise<TextnnIterationReport[]> {
  const t0 = performance.now();
  const [embSpec, denseSpec] = checkTextnnTables(o.tables, o.model);
  const keys = function* () {
    for (const s of [...o.shards, o.heldout]) yield* s.keys;
  };
  const emb = new LocalTable(embSpec, keys());
  const denseKeys = Float64Array.from({ length: denseSpec.keySpace }, (_, i) => i);
  const dense = new LocalTable(denseSpec, denseKeys);
  const queue = laggedPushes(o.lag ?? 0);
  const reports: TextnnIterationReport[] = [];
  for (let it = 0; it < o.iterations; it++) {
    let loss = 0;
    let examples = 0;
    for (const s of o.shards) {
      const g = await o.gradient(s, emb.pull(s.keys), dense.pull(denseKeys));
      loss += g.loss;
      examples += g.examples;
      queue.add(() => {
        emb.push(s.keys, g.gradEmb);
        dense.push(denseKeys, g.gradDense);
      });
    }
    if (it === o.iterations - 1) queue.flush();
    const ev = evaluateTextnn(o.heldout, emb.pull(o.heldout.keys), dense.pull(denseKeys), o.model);
    const r = {
      iteration: it,
      trainLoss: examples ? loss / examples : 0,
      logLoss: ev.logLoss,
      accuracy: ev.accuracy,
      ms: performance.now() - t0,
    };
    reports.push(r);
    o.onIteration?.(r);
  }
  return reports;
}
