import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomShard } from '../../shared/apps/random-shard.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import { textnnGradientRef } from './eval.ts';
import { denseSize, type TextnnConfig } from './model.ts';
import { type TextnnGradientFn, trainTextnn } from './train.ts';

/** Rows [from, to) of `s` as a shard over the same working set. */
function sliceRows(s: DecodedShard, from: number, to: number, index: number): DecodedShard {
  const a = s.rowPtr[from];
  const b = s.rowPtr[to];
  return {
    index,
    keys: s.keys,
    rowPtr: Uint32Array.from(s.rowPtr.subarray(from, to + 1), (p) => p - a),
    col: s.col.slice(a, b),
    val: s.val.slice(a, b),
    labels: s.labels.slice(from, to),
  };
}

const model: TextnnConfig = { dim: 4, hidden: 4 };
// One learnable problem (labels from a hidden linear model), cut into 4 training shards and a held-out set.
const all = randomShard(5, { examples: 1000, perExample: 8, keys: 60, keySpace: 2 ** 16 });
const shards = [0, 1, 2, 3].map((i) => sliceRows(all, i * 200, (i + 1) * 200, i));
const heldout = sliceRows(all, 800, 1000, 99);

function tables(): TableSpec[] {
  const base = { job: 1, updater: 'adagrad', params: { lr: 0.1 } };
  return [
    {
      ...base,
      id: 1,
      name: 'embedding',
      kind: 'sparse',
      keySpace: 2 ** 16,
      valueLength: model.dim,
      init: { kind: 'uniform', scale: 0.1, seed: 1 },
    },
    {
      ...base,
      id: 2,
      name: 'dense',
      kind: 'dense',
      keySpace: denseSize(model),
      valueLength: 1,
      init: { kind: 'uniform', scale: 0.7, seed: 2 },
    },
  ];
}

/** The float64 reference gradient, rounded to float32 like a push; `mangle` breaks it on purpose. */
const gradient =
  (mangle?: (g: { gradEmb: Float32Array; gradDense: Float32Array }) => void): TextnnGradientFn =>
  async (s, emb, dense) => {
    const r = textnnGradientRef(s, emb, dense, model);
    const g = { gradEmb: Float32Array.from(r.gradEmb), gradDense: Float32Array.from(r.gradDense) };
    mangle?.(g);
    return { ...g, loss: r.loss, examples: s.labels.length };
  };

const run = (g: TextnnGradientFn, lag = 0) =>
  trainTextnn({ tables: tables(), model, shards, heldout, iterations: 15, gradient: g, lag });

describe('in-process text-classifier training', () => {
  it('learns a tiny random problem, also with stale pushes', async () => {
    // Measured: held-out log-loss 0.131 (lag 0), 0.165 (lag 3), 0.221 (lag 7) after 15 iterations.
    for (const [lag, bound] of [
      [0, 0.16],
      [3, 0.25],
      [7, 0.35],
    ]) {
      const r = await run(gradient(), lag);
      const last = r[r.length - 1];
      assert.equal(r.length, 15);
      assert.ok(last.logLoss < bound, `lag ${lag}: log-loss ${last.logLoss}`);
      assert.ok(last.accuracy >= 0.88, `lag ${lag}: accuracy ${last.accuracy}`);
      assert.ok(r[0].ms >= 0 && last.ms >= r[0].ms);
    }
  });

  it('does not learn with a broken gradient (what the bounds above rule out)', async () => {
    // Measured: 0.667, 0.595 and 0.670.
    for (const [name, g] of [
      ['no embedding gradient', gradient((g) => g.gradEmb.fill(0))],
      ['no dense gradient', gradient((g) => g.gradDense.fill(0))],
      ['embedding rows mixed up', gradient((g) => g.gradEmb.reverse())],
    ] as const) {
      const r = await run(g);
      assert.ok(r[r.length - 1].logLoss > 0.5, name);
    }
  });

  it('refuses tables that do not fit the model', async () => {
    const [emb, dense] = tables();
    const bad = [[emb], [{ ...emb, valueLength: 3 }, dense], [emb, { ...dense, keySpace: 10 }]];
    for (const t of bad)
      await assert.rejects(
        trainTextnn({ tables: t, model, shards, heldout, iterations: 1, gradient: gradient() }),
        (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
      );
  });
});
