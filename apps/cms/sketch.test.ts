// The Count-Min sketch's math against exact counts: cells, estimates never under the truth,
// and the (ε, δ) bound on a seeded Zipf stream.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { createZipf } from '../../shared/zipf.ts';
import { cellOf, estimate, guarantee, rowSeeds, shardCells, sketchFor } from './sketch.ts';

/** A stream of `n` Zipf(1.1) items (ranks 1..vocab) over `vocab` ids spread over 32 bits, as `docs` documents of counts. */
function stream(seed: number, n: number, vocab: number, docs: number) {
  const rng = createRng(seed);
  const zipf = createZipf(rng, vocab, 1.1);
  const ids = Array.from({ length: vocab }, (_, i) => Math.imul(i + 1, 0x9e3779b1) >>> 0);
  const exact = new Map<number, number>();
  const rows = Array.from({ length: docs }, () => new Map<number, number>());
  for (let i = 0; i < n; i++) {
    const x = ids[zipf() - 1];
    exact.set(x, (exact.get(x) ?? 0) + 1);
    const row = rows[i % docs];
    row.set(x, (row.get(x) ?? 0) + 1);
  }
  const sparse = rows.map((m) => {
    const keys = Float64Array.from(m.keys()).sort();
    return { keys, values: Float32Array.from(keys, (k) => m.get(k)!) };
  });
  return { exact, shard: buildShard(0, sparse, new Uint8Array(docs)) };
}

describe('Count-Min sketch', () => {
  it('has the shape of its guarantee', () => {
    assert.deepEqual(sketchFor(0.001, 0.01, 7), { depth: 5, width: 2719, seed: 7 });
    const g = guarantee({ depth: 4, width: 2 ** 15, seed: 1 });
    assert.ok(Math.abs(g.epsilon - Math.E / 32768) < 1e-15 && Math.abs(g.delta - Math.exp(-4)) < 1e-15);
    for (const [e, d] of [
      [0, 0.1],
      [0.1, 1],
      [Number.NaN, 0.1],
    ])
      assert.throws(
        () => sketchFor(e, d, 1),
        (err) => err instanceof TabshardError && err.code === 'TS_ERR_INVALID_ARGUMENT',
      );
  });

  it("adds every occurrence to one counter per row: a shard's cells against a direct count", () => {
    const cfg = { depth: 3, width: 101, seed: 5 };
    const { exact, shard } = stream(1, 20_000, 500, 40);
    const { cells, counts, inserts } = shardCells(cfg, shard);
    assert.equal(inserts, 20_000);
    const seeds = rowSeeds(cfg);
    const direct = new Map<number, number>();
    for (const [x, c] of exact)
      for (let r = 0; r < cfg.depth; r++) {
        const k = cellOf(cfg, seeds, r, x);
        assert.ok(k >= r * cfg.width && k < (r + 1) * cfg.width);
        direct.set(k, (direct.get(k) ?? 0) + c);
      }
    assert.deepEqual(
      [...cells],
      [...direct.keys()].sort((a, b) => a - b),
    );
    cells.forEach((k, i) => {
      assert.equal(counts[i], direct.get(k));
    });
    assert.equal(shardCells(cfg, shard), shardCells(cfg, shard), 'cached per shard');
    assert.notEqual(shardCells({ ...cfg, seed: 6 }, shard).cells, cells, 'another shape, other cells');
  });

  it('never underestimates, and stays within ε·N for at least 1 − δ of the items', () => {
    const cfg = sketchFor(0.002, 0.05, 3); // width 1360, depth 3
    const { epsilon, delta } = guarantee(cfg);
    const { exact, shard } = stream(2, 200_000, 20_000, 100);
    const { cells, counts } = shardCells(cfg, shard);
    const table = new Float64Array(cfg.depth * cfg.width);
    cells.forEach((k, i) => {
      table[k] = counts[i];
    });
    const seeds = rowSeeds(cfg);
    let within = 0;
    let exactHits = 0;
    for (const [x, c] of exact) {
      const e = estimate(cfg, seeds, x, (k) => table[k]);
      assert.ok(e >= c, `item ${x}: ${e} < ${c}`);
      if (e - c <= epsilon * 200_000) within++;
      if (e === c) exactHits++;
    }
    assert.ok(within / exact.size >= 1 - delta, `${within} of ${exact.size} within the bound`);
    assert.ok(exactHits > 0 && exactHits < exact.size, 'a real sketch: some items exact, some over');
  });
});
