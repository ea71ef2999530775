import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { logregGradientRef } from '../../apps/logreg/eval.ts';
import { CTR_UPDATER, prepareLogregJob } from '../../apps/logreg/job.ts';
import { trainLogreg } from '../../apps/logreg/train.ts';
import { type DecodedShard, decodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { type CtrDataOptions, ctrVocab, prepareCtrData } from './ctr-data.ts';

const SMALL: CtrDataOptions = { examples: 24_000, heldout: 4_000, shards: 4, keyBits: 20, seed: 5 };

describe('synthetic click-through data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabshard-ctr-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is deterministic and cached byte for byte, planted facts included', async () => {
    const cold = await prepareCtrData({ ...SMALL, cacheDir: dir });
    assert.equal(cold.cached, false);
    assert.equal(cold.config.generator, 'synthetic-ctr');
    const warm = await prepareCtrData({ ...SMALL, cacheDir: dir });
    assert.equal(warm.cached, true);
    assert.equal(warm.version, cold.version);
    assert.deepEqual(warm.heldout, cold.heldout);
    assert.deepEqual(warm.shards, cold.shards);
    assert.deepEqual(warm.planted, cold.planted);
    const again = await prepareCtrData({ ...SMALL, cacheDir: null });
    assert.equal(again.version, cold.version, 'same options, same bytes');
    assert.deepEqual(again.shards, cold.shards);
    const other = await prepareCtrData({ ...SMALL, seed: 6, cacheDir: null });
    assert.notEqual(other.version, cold.version, 'another seed, other data');
  });

  it('has the shape of one-hot ad logs: sorted keys below 2^keyBits, power-law key frequencies, a CTR-like rate', async () => {
    const d = await prepareCtrData({ ...SMALL, cacheDir: dir });
    const held = decodeShard(d.heldout); // decodeShard checks sorted unique keys and row columns
    assert.equal(held.index, HELDOUT_INDEX);
    assert.equal(held.labels.length, 4_000);
    const shards = d.shards.map(decodeShard);
    assert.deepEqual(
      shards.map((s) => [s.index, s.labels.length]),
      [0, 1, 2, 3].map((i) => [i, 5_000]),
    );
    const perRow = 24 + 2 + 1; // fields + crosses + bias
    const count = new Map<number, number>();
    for (const s of [held, ...shards]) {
      assert.ok(s.keys[s.keys.length - 1] < 2 ** 20);
      for (let i = 0; i < s.labels.length; i++) {
        const n = s.rowPtr[i + 1] - s.rowPtr[i];
        let sum = 0;
        for (let j = s.rowPtr[i]; j < s.rowPtr[i + 1]; j++) sum += s.val[j];
        assert.ok(n <= perRow && sum === perRow, 'one value per field, hash collisions merged by adding');
      }
      for (const c of s.col) count.set(s.keys[c], (count.get(s.keys[c]) ?? 0) + 1);
    }
    const freq = [...count.values()].sort((a, b) => b - a);
    const total = freq.reduce((a, b) => a + b, 0);
    assert.equal(total, 24_000 * perRow - countCollisions([held, ...shards], perRow));
    const top = freq.slice(0, Math.ceil(freq.length / 100)).reduce((a, b) => a + b, 0);
    assert.ok(top / total > 0.5, `top 1% of keys hold ${top / total} of the non-zeros`);
    assert.ok(freq.filter((f) => f === 1).length > freq.length / 3, 'a long tail of keys seen once');
    const p = d.planted;
    for (const rate of [p.positiveRate, p.heldoutPositiveRate]) assert.ok(rate > 0.12 && rate < 0.18, `rate ${rate}`);
    assert.deepEqual(p.vocab, ctrVocab(24, 4_000_000));
    assert.ok(p.bayesLogLoss < p.baseLogLoss - 0.05, 'the planted model beats the best constant');
    assert.ok(p.baseLogLoss < Math.LN2, 'and the constant beats the zero model');
  });

  it('is learnable: FTRL over the shards closes most of the gap to the planted model', async () => {
    const { heldout, ...rest } = SMALL;
    // Smaller vocabularies than the default: 20k training examples see each value more often.
    const ctr = { heldout, maxVocab: 100_000 };
    const job = await prepareLogregJob({ job: 3, data: 'ctr', ...rest, ctr, cacheDir: dir });
    assert.equal(job.meta.heldout, heldout);
    assert.equal(job.meta.dataset.name, 'ctr');
    assert.equal(job.tables[0].keySpace, 2 ** 20);
    assert.deepEqual(job.tables[0].params, CTR_UPDATER.params);
    if (job.meta.dataset.name !== 'ctr') return;
    const { bayesLogLoss, baseLogLoss } = job.meta.dataset.planted;
    assert.ok(job.target.logLoss! > bayesLogLoss);
    // The job's l1 is tuned for 2M examples (|z| sums gradients over examples): scaled down here.
    const table = { ...job.tables[0], params: { ...job.tables[0].params, l1: 1 } };
    const r = await trainLogreg({
      table,
      shards: job.shards.map(decodeShard),
      heldout: job.heldout,
      iterations: 4,
      lag: 3,
      gradient: async (s, w) => {
        const g = logregGradientRef(s, w);
        return { grad: Float32Array.from(g.grad), loss: g.loss, examples: s.labels.length };
      },
    });
    const last = r[r.length - 1].logLoss;
    // Labels not tied to the features (a broken pipeline) leave the learner at the constant's loss.
    const bound = baseLogLoss - 0.3 * (baseLogLoss - bayesLogLoss);
    assert.ok(last < bound, `log-loss ${last} ≥ ${bound}`);
    assert.ok(last > bayesLogLoss - 0.01, 'nor much below the Bayes floor');
  });

  it('hashes into the full 32-bit key space too (no dense key map there)', async () => {
    const d = await prepareCtrData({ examples: 3_000, heldout: 500, shards: 2, keyBits: 32, cacheDir: null });
    const shards = [d.heldout, ...d.shards].map(decodeShard);
    const max = Math.max(...shards.map((s) => s.keys[s.keys.length - 1]));
    assert.ok(max >= 2 ** 31 && max < 2 ** 32, `largest key ${max}`);
    assert.equal(
      shards.reduce((n, s) => n + s.labels.length, 0),
      3_000,
    );
  });

  it('refuses bad options with TS_ERR_INVALID_ARGUMENT', async () => {
    for (const o of [{ shards: 0 }, { keyBits: 33 }, { examples: 10, heldout: 10 }, { crosses: 13 }, { zipf: 0 }]) {
      await assert.rejects(
        prepareCtrData({ ...SMALL, cacheDir: null, ...o }),
        (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
      );
    }
  });
});

/** Non-zeros lost to hash collisions inside rows (rows shorter than `perRow`). */
function countCollisions(shards: DecodedShard[], perRow: number): number {
  let lost = 0;
  for (const s of shards) for (let i = 0; i < s.labels.length; i++) lost += perRow - (s.rowPtr[i + 1] - s.rowPtr[i]);
  return lost;
}
