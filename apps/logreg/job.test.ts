// Integration: the real job data, the real server-side updater (createUpdater) and the real tfjs
// gradient (apps/logreg/gradient.ts, wasm backend) in one process.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../../client/tf-backend.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { parseTableSpec, sameTable } from '../../shared/table.ts';
import { logregGradient } from './gradient.ts';
import { type LogregJob, prepareLogregJob } from './job.ts';
import { type GradientFn, trainLogreg } from './train.ts';

describe('logistic-regression job on SpamAssassin', () => {
  let job: LogregJob;
  let shards: DecodedShard[];
  const gradient: GradientFn = (s, w) => logregGradient(tf, s, w);

  before(async () => {
    await initTf(tf, { prefer: ['wasm', 'cpu'], pick: 'first' });
    job = await prepareLogregJob({ job: 7 }); // default data, from .cache/tabshard after the first run
    shards = job.shards.map(decodeShard);
  });

  it('defines a valid sparse weights table over 2^keyBits keys and a stable version', async () => {
    const [t] = job.tables;
    assert.ok(sameTable(parseTableSpec(t), t));
    assert.equal(t.job, 7);
    assert.equal(t.kind, 'sparse');
    assert.equal(t.keySpace, 2 ** 20);
    assert.equal(t.valueLength, 1);
    assert.equal(shards.length, 16);
    assert.equal(job.meta.examples, 6046);
    assert.equal(job.meta.train + job.meta.heldout, 6046);
    assert.ok(job.meta.features > 10_000);
    const again = await prepareLogregJob({ job: 7 });
    assert.equal(again.meta.cached, true);
    assert.equal(again.version, job.version);
  });

  it('reaches the held-out target within the job iterations, held-out loss decreasing (BSP, tasks in turn)', async () => {
    const r = await trainLogreg({
      table: job.tables[0],
      shards,
      heldout: job.heldout,
      iterations: job.iterations,
      gradient,
    });
    const last = r[r.length - 1];
    assert.ok(last.accuracy >= job.target.accuracy, `accuracy ${last.accuracy}`);
    assert.ok(last.logLoss <= job.target.logLoss!, `log-loss ${last.logLoss}`);
    assert.ok(r[0].logLoss < Math.LN2, 'the first iteration already beats the zero model');
    for (let i = 1; i < r.length; i++) assert.ok(r[i].logLoss < r[i - 1].logLoss, `loss falls at iteration ${i}`);
    assert.ok(last.nonZero > 0 && last.nonZero < job.meta.features / 2, 'L1 keeps the model sparse');
  });

  it('still reaches the target when every task of an iteration pulls before any push (16 parallel workers)', async () => {
    const lag = shards.length - 1;
    const r = await trainLogreg({
      table: job.tables[0],
      shards,
      heldout: job.heldout,
      iterations: job.iterations,
      gradient,
      lag,
    });
    const last = r[r.length - 1];
    assert.ok(last.accuracy >= job.target.accuracy, `accuracy ${last.accuracy}`);
    assert.ok(last.logLoss <= job.target.logLoss!, `log-loss ${last.logLoss}`);
  });
});
