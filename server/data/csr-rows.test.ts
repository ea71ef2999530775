import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildShard, decodeShard, encodeShard } from '../../shared/apps/shard.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import { buildCsrShard, type CsrRows, SCRATCH_FREE } from './csr-rows.ts';

describe('cutting CSR rows into shards', () => {
  // 300 seeded rows of 1..12 sorted unique keys below 2^12, with random values.
  const rng = createRng(11);
  const list = Array.from({ length: 300 }, () => {
    const keys = randomSortedKeys(rng, 1 + rng.int(12), 2 ** 12);
    return { keys, values: Float32Array.from(keys, () => rng.next()) };
  });
  const labels = Uint8Array.from(list, () => rng.int(2));
  const nnz = list.reduce((n, r) => n + r.keys.length, 0);
  const rows: CsrRows = { keys: new Uint32Array(nnz), val: new Float32Array(nnz), rowPtr: new Uint32Array(301) };
  let o = 0;
  list.forEach((r, i) => {
    rows.keys.set(r.keys, o);
    rows.val.set(r.values, o);
    o += r.keys.length;
    rows.rowPtr[i + 1] = o;
  });

  it('gives the shard buildShard gives, with a scratch map or without, and leaves the map free', () => {
    const scratch = new Uint32Array(2 ** 12).fill(SCRATCH_FREE);
    for (const [from, to] of [
      [0, 300],
      [17, 150],
      [150, 151],
      [42, 42],
    ]) {
      const want = encodeShard(buildShard(3, list.slice(from, to), labels.slice(from, to)));
      assert.deepEqual(encodeShard(buildCsrShard(3, rows, labels, from, to)), want);
      assert.deepEqual(encodeShard(buildCsrShard(3, rows, labels, from, to, scratch)), want);
      assert.ok(scratch.every((x) => x === SCRATCH_FREE));
      decodeShard(want); // well-formed
    }
  });
});
