// Integration: the real job data, the real server-side updaters and the real tfjs gradient
// (apps/textnn/gradient.ts, wasm backend) in one process.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../../client/tf-backend.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { parseTableSpec, sameTable } from '../../shared/table.ts';
import { prepareLogregJob } from '../logreg/job.ts';
import { textnnGradient } from './gradient.ts';
import { prepareTextnnJob, type TextnnJob } from './job.ts';
import { denseSize } from './model.ts';
import { trainTextnn } from './train.ts';

describe('text-classifier job on SpamAssassin', () => {
  let job: TextnnJob;

  before(async () => {
    await initTf(tf, { prefer: ['wasm', 'cpu'], pick: 'first' });
    job = await prepareTextnnJob({ job: 9 }); // default data, from .cache/tabshard after the first run
  });

  it('defines [embedding, dense] tables over the logreg job data, with a stable version', async () => {
    const [emb, dense] = job.tables;
    for (const t of job.tables) assert.ok(sameTable(parseTableSpec(t), t), t.name);
    assert.deepEqual(job.model, { dim: 16, hidden: 16 });
    assert.deepEqual(
      [emb.job, emb.id, emb.kind, emb.keySpace, emb.valueLength],
      [9, 1, 'sparse', 2 ** 20, job.model.dim],
    );
    assert.deepEqual(
      [dense.job, dense.id, dense.kind, dense.keySpace, dense.valueLength],
      [9, 2, 'dense', denseSize(job.model), 1],
    );
    const logreg = await prepareLogregJob({ job: 9 });
    assert.deepEqual(job.shards, logreg.shards, 'the same shards');
    assert.deepEqual(job.heldout, logreg.heldout);
    assert.notEqual(job.version, logreg.version);
    assert.equal((await prepareTextnnJob({ job: 9 })).version, job.version);
    // Another shape is another job (small generated data: each shape's bounds are measured anew).
    const small = { job: 9, data: 'ctr', examples: 400 } as const;
    const base = await prepareTextnnJob(small);
    const other = await prepareTextnnJob({ ...small, model: { hidden: 8 } });
    assert.equal(other.tables[1].keySpace, denseSize({ dim: 16, hidden: 8 }));
    assert.notEqual(other.version, base.version);
    assert.equal(base.tables[1].keySpace, denseSize(job.model));
  });

  it('reaches the held-out target in a few iterations with tasks in turn (tfjs gradient)', async () => {
    const r = await trainTextnn({
      tables: job.tables,
      model: job.model,
      shards: job.shards.map(decodeShard),
      heldout: job.heldout,
      iterations: 2,
      gradient: (s, e, d) => textnnGradient(tf, s, e, d, job.model),
    });
    const last = r[r.length - 1];
    assert.ok(last.accuracy >= job.target.accuracy, `accuracy ${last.accuracy}`);
    assert.ok(last.logLoss <= job.target.logLoss!, `log-loss ${last.logLoss}`);
  });
});
