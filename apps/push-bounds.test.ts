// Integration: the push bounds the jobs derive (logreg.ts: proven from the data; textnn.ts:
// measured × 10) against what the real worker code (tfjs, wasm backend) pushes in clean
// in-process runs over all shards for the job's iterations, at the staleness the jobs are tuned
// for — checked by a server node's own Table — and against the measured attacks (a push × 1e6,
// a push × −100).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../client/tf-backend.ts';
import { Table } from '../server/node/table.ts';
import { biasKey } from '../shared/apps/features.ts';
import { type DecodedShard, decodeShard } from '../shared/apps/shard.ts';
import { TabshardError } from '../shared/errors.ts';
import type { KvKeys } from '../shared/protocol/kv.ts';
import { createRng } from '../shared/rng.ts';
import type { TableSpec } from '../shared/table.ts';
import { logregGradientRef } from './logreg/eval.ts';
import { logregGradient } from './logreg/gradient.ts';
import { LOGREG_BOUND_SLACK, type LogregJob, logregBounds, prepareLogregJob } from './logreg/job.ts';
import { trainLogreg } from './logreg/train.ts';
import { textnnGradient } from './textnn/gradient.ts';
import { prepareTextnnJob, TEXTNN_BOUND_FACTOR, type TextnnJob, textnnMeasureLags } from './textnn/job.ts';
import { trainTextnn } from './textnn/train.ts';

const nodeTables = new Map<TableSpec, Table>();

/** What a node answers to this push on a table of `spec` (one, reused): 'ok' or the error code. */
function nodeCheck(spec: TableSpec, keys: KvKeys, values: Float32Array): string {
  let t = nodeTables.get(spec);
  if (!t) {
    t = new Table(spec);
    nodeTables.set(spec, t);
  }
  try {
    t.push(keys, values, null);
    return 'ok';
  } catch (e) {
    if (!(e instanceof TabshardError)) throw e;
    return e.code;
  }
}

const list = (keys: Float64Array): KvKeys => ({ kind: 'list', keys });
/** g × f, as a new array. */
function times(g: Float32Array, f: number): Float32Array {
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = g[i] * f;
  return out;
}

describe('push bounds of the logistic-regression job (proven from the data)', () => {
  let job: LogregJob;
  let shards: DecodedShard[];
  let spec: TableSpec;

  before(async () => {
    await initTf(tf, { prefer: ['wasm', 'cpu'], pick: 'first' });
    job = await prepareLogregJob({ job: 7 });
    shards = job.shards.map(decodeShard);
    spec = job.tables[0];
  });

  it('sets value = max column L1 and norm = max ‖column L1s‖ over the shards, with slack', () => {
    assert.deepEqual(spec.bounds, logregBounds(shards));
    let value = 0;
    let norm = 0;
    for (const s of shards) {
      const c = new Float64Array(s.keys.length);
      s.col.forEach((k, j) => {
        c[k] += Math.abs(s.val[j]);
      });
      value = Math.max(value, ...c);
      norm = Math.max(norm, Math.hypot(...c));
    }
    const slack = LOGREG_BOUND_SLACK + (Math.max(...shards.map((s) => s.labels.length)) + 1) * 2 ** -24;
    assert.ok(Math.abs(spec.bounds!.value! - (value * slack + 1e-6)) < 1e-9);
    assert.ok(Math.abs(spec.bounds!.norm! - (norm * slack + 1e-6)) < 1e-9);
    // Default data: the bias column (value 1 in every example) of the largest shard, 303 examples.
    assert.equal(value, Math.max(...shards.map((s) => s.labels.length)));
  });

  it('holds for any weights, and is tight: a worst-case labelling comes within 1 % of it', () => {
    const rng = createRng(9);
    for (const s of shards) {
      const w = Float64Array.from(s.keys, () => (rng.next() - 0.5) * 200); // saturated: |σ(z) − y| ≈ 0 or 1
      assert.equal(nodeCheck(spec, list(s.keys), Float32Array.from(logregGradientRef(s, w).grad)), 'ok');
    }
    // Every example predicted spam with certainty and labelled ham: ∂L/∂w_bias = Σ_i 1 = examples.
    const s = shards.reduce((a, b) => (b.labels.length > a.labels.length ? b : a));
    const { config } = job.meta.dataset;
    assert.ok('hashSeed' in config);
    const bias = s.keys.indexOf(biasKey(job.meta.keyBits, config.hashSeed));
    const w = new Float64Array(s.keys.length);
    w[bias] = 40;
    const g = logregGradientRef({ ...s, labels: new Uint8Array(s.labels.length) }, w).grad;
    const ratio = Math.max(...g.map(Math.abs)) / spec.bounds!.value!;
    assert.ok(ratio > 0.99 && ratio <= 1, `worst case at ${ratio} of the bound`);
  });

  for (const lag of [0, 15, 31]) {
    it(`a clean run's pushes (tfjs) stay within the bounds; × 1e6 always and × −100 in iteration 0 are refused (lag ${lag})`, async () => {
      let pushes = 0;
      const r = await trainLogreg({
        table: spec,
        shards,
        heldout: job.heldout,
        iterations: job.iterations,
        lag,
        gradient: async (s, w) => {
          const g = await logregGradient(tf, s, w);
          const keys = list(s.keys);
          assert.equal(nodeCheck(spec, keys, g.grad), 'ok', `push ${pushes}`);
          assert.equal(nodeCheck(spec, keys, times(g.grad, 1e6)), 'TS_ERR_PUSH_BOUND');
          if (pushes < shards.length) assert.equal(nodeCheck(spec, keys, times(g.grad, -100)), 'TS_ERR_PUSH_BOUND');
          pushes++;
          return g;
        },
      });
      assert.equal(pushes, shards.length * job.iterations);
      assert.ok(r[r.length - 1].accuracy >= 0.96, 'the run is the clean one the job is tuned for');
    });
  }
});

describe('push bounds of the text-classifier job (measured × 10)', () => {
  let job: TextnnJob;
  let shards: DecodedShard[];

  before(async () => {
    await initTf(tf, { prefer: ['wasm', 'cpu'], pick: 'first' });
    job = await prepareTextnnJob({ job: 9 }); // the measurement is cached beside the data after the first run
    shards = job.shards.map(decodeShard);
  });

  it('sets each table to 10 × the largest push of clean runs at lags 0, S − 1, 2S − 1', () => {
    const m = job.pushMeasure!;
    assert.deepEqual(m.lags, textnnMeasureLags(shards.length));
    assert.deepEqual(m.lags, [0, 15, 31]);
    assert.equal(m.factor, TEXTNN_BOUND_FACTOR);
    assert.equal(m.iterations, job.iterations);
    const [emb, dense] = job.tables;
    assert.deepEqual(emb.bounds, { value: m.measured.embedding.value * 10, norm: m.measured.embedding.norm * 10 });
    assert.deepEqual(dense.bounds, { value: m.measured.dense.value * 10, norm: m.measured.dense.norm * 10 });
  });

  for (const lag of [0, 31]) {
    it(`a clean run's pushes (tfjs) stay within the bounds; × 1e6 always and × −100 of iteration 0's embedding push are refused (lag ${lag})`, async () => {
      const [embSpec, denseSpec] = job.tables;
      const denseKeys: KvKeys = { kind: 'range', begin: 0, end: denseSpec.keySpace };
      let pushes = 0;
      const r = await trainTextnn({
        tables: job.tables,
        model: job.model,
        shards,
        heldout: job.heldout,
        iterations: job.iterations,
        lag,
        gradient: async (s, e, d) => {
          const g = await textnnGradient(tf, s, e, d, job.model);
          const keys = list(s.keys);
          assert.equal(nodeCheck(embSpec, keys, g.gradEmb), 'ok', `embedding push ${pushes}`);
          assert.equal(nodeCheck(denseSpec, denseKeys, g.gradDense), 'ok', `dense push ${pushes}`);
          assert.equal(nodeCheck(embSpec, keys, times(g.gradEmb, 1e6)), 'TS_ERR_PUSH_BOUND');
          assert.equal(nodeCheck(denseSpec, denseKeys, times(g.gradDense, 1e6)), 'TS_ERR_PUSH_BOUND');
          if (pushes < shards.length)
            assert.equal(nodeCheck(embSpec, keys, times(g.gradEmb, -100)), 'TS_ERR_PUSH_BOUND', `push ${pushes}`);
          pushes++;
          return g;
        },
      });
      assert.equal(pushes, shards.length * job.iterations);
      assert.ok(r[r.length - 1].accuracy >= 0.96, 'the run is the clean one the job is tuned for');
    });
  }
});
