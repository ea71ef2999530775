/**
 * gatherChunks: what a range copy sends is exactly what the node holds of the pieces — a sparse
 * table's stored keys of all pieces in key order with their rows (values and updater state), in
 * chunks of at most EXPORT_KEYS keys; a dense table's allocated pages as ranges.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { gatherChunks } from './copy-chunks.ts';
import { EXPORT_KEYS } from './rows.ts';
import { Table } from './table.ts';
import { tableSpec } from './testkit.ts';

describe('range copies: gathered row chunks', () => {
  it('sparse: every stored key of the pieces once, in order, with its rows, chunks ≤ EXPORT_KEYS', () => {
    const t = new Table(tableSpec(1, 'ada', 'sparse', 2 ** 30, 2, 'adagrad', { lr: 0.1 }));
    const keys = randomSortedKeys(createRng(4), 150_000, 2 ** 30);
    t.push(
      { kind: 'list', keys },
      Float32Array.from({ length: 2 * keys.length }, (_, i) => (i % 7) - 3),
      null,
    );
    const pieces: Array<[number, number]> = [];
    for (let b = 0; b < 2 ** 30; b += 2 ** 26) pieces.push([b + 2 ** 24, b + 2 ** 25]); // 16 pieces, gaps between
    const chunks = [...gatherChunks(t, pieces)];
    const want = keys.filter((k) => pieces.some(([b, e]) => k >= b && k < e));
    const got: number[] = [];
    for (const c of chunks) {
      assert.equal(c.keys.kind, 'list');
      const ks = (c.keys as { keys: Float64Array }).keys;
      assert.ok(ks.length <= EXPORT_KEYS);
      assert.deepEqual(Array.from(c.rows), Array.from(t.rows(c.keys)), 'rows are the table rows of those keys');
      got.push(...ks);
    }
    assert.deepEqual(got, Array.from(want));
    assert.ok(chunks.length < pieces.length, `${chunks.length} frames for ${pieces.length} pieces`);
  });

  it('dense: allocated pages go as ranges, as the table exports them', () => {
    const t = new Table(tableSpec(2, 'd', 'dense', 1 << 20, 1, 'sum'));
    t.push({ kind: 'range', begin: 1000, end: 300_000 }, new Float32Array(299_000).fill(1), null);
    const pieces: Array<[number, number]> = [
      [0, 100_000],
      [200_000, 400_000],
    ];
    const chunks = [...gatherChunks(t, pieces)];
    assert.deepEqual(
      chunks.map((c) => c.keys),
      pieces.flatMap(([b, e]) => t.exportRange(b, e).map((c) => c.keys)),
    );
  });
});
