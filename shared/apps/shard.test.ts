import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { randomShard } from './random-shard.ts';
import { buildShard, type DecodedShard, decodeShard, encodeShard, SHARD_HEADER_BYTES, shardBytes } from './shard.ts';

const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

const tiny: DecodedShard = {
  index: 3,
  keys: Float64Array.of(5, 2 ** 40 + 1),
  rowPtr: Uint32Array.of(0, 2, 3),
  col: Uint32Array.of(0, 1, 1),
  val: Float32Array.of(0.5, -1, 2),
  labels: Uint8Array.of(1, 0),
};

function assertSameShard(a: DecodedShard, b: DecodedShard): void {
  assert.equal(a.index, b.index);
  assert.deepEqual([...a.keys], [...b.keys]);
  assert.deepEqual([...a.rowPtr], [...b.rowPtr]);
  assert.deepEqual([...a.col], [...b.col]);
  assert.deepEqual([...a.val], [...b.val]);
  assert.deepEqual([...a.labels], [...b.labels]);
}

describe('shard codec', () => {
  it('encodes byte for byte as the format in shard.ts documents it (fixture)', () => {
    const bytes = encodeShard(tiny);
    assert.equal(
      hex(bytes),
      [
        '01000000', // version 1, reserved
        '03000000', // index 3
        '02000000', // K = 2 keys
        '02000000', // E = 2 examples
        '03000000', // N = 3 non-zeros
        '00000000', // reserved
        '0500000000000000', // key 5
        '0100000000010000', // key 2^40 + 1 (lo 1, hi 256)
        '00000000',
        '02000000',
        '03000000', // rowPtr 0 2 3
        '00000000',
        '01000000',
        '01000000', // col 0 1 1
        '0000003f',
        '000080bf',
        '00000040', // val 0.5 -1 2
        '0100', // labels 1 0
      ].join(''),
    );
    assert.equal(bytes.byteLength, shardBytes(2, 2, 3));
    assertSameShard(decodeShard(bytes), tiny);
  });

  it('round-trips seeded random shards, also from unaligned buffers', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = createRng(seed);
      const s = randomShard(seed, {
        index: rng.int(1000),
        examples: rng.int(50),
        perExample: 1 + rng.int(20),
        keys: 1 + rng.int(200),
        keySpace: seed % 2 ? 2 ** 20 : 2 ** 52,
      });
      const bytes = encodeShard(s);
      assertSameShard(decodeShard(bytes), s);
      const shifted = new Uint8Array(bytes.byteLength + 1);
      shifted.set(bytes, 1);
      assertSameShard(decodeShard(shifted.subarray(1)), s);
    }
  });

  it('builds the working set and CSR columns from rows over global keys', () => {
    const s = buildShard(
      9,
      [
        { keys: Float64Array.of(10, 30), values: Float32Array.of(1, 2) },
        { keys: Float64Array.of(20, 30), values: Float32Array.of(3, 4) },
      ],
      [0, 1],
    );
    assert.deepEqual([...s.keys], [10, 20, 30]);
    assert.deepEqual([...s.rowPtr], [0, 2, 4]);
    assert.deepEqual([...s.col], [0, 2, 1, 2]);
    assert.deepEqual([...s.val], [1, 2, 3, 4]);
    assertSameShard(decodeShard(encodeShard(s)), s);
  });

  it('rejects malformed shards with the documented codes', () => {
    const good = encodeShard(tiny);
    const code = (b: Uint8Array) => {
      try {
        decodeShard(b);
        return 'ok';
      } catch (err) {
        assert.ok(err instanceof TabshardError);
        return err.code;
      }
    };
    const patch = (at: number, bytes: number[]) => {
      const b = good.slice();
      b.set(bytes, at);
      return b;
    };
    assert.equal(code(good.subarray(0, 10)), 'TS_ERR_FRAME_TRUNCATED');
    assert.equal(code(good.subarray(0, good.length - 1)), 'TS_ERR_FRAME_TRUNCATED');
    assert.equal(code(Uint8Array.from([...good, 0])), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(patch(0, [2])), 'TS_ERR_FRAME_VERSION');
    assert.equal(code(patch(1, [1])), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(code(patch(SHARD_HEADER_BYTES, [2, 0, 0, 0, 0, 1, 0, 0])), 'TS_ERR_KEYS_UNSORTED');
    assert.equal(code(patch(SHARD_HEADER_BYTES + 8, [0, 0, 0, 0, 0, 0, 16, 0])), 'TS_ERR_KEY_OUT_OF_RANGE');
    assert.equal(code(patch(SHARD_HEADER_BYTES + 16 + 4, [4])), 'TS_ERR_FRAME_MALFORMED'); // rowPtr[1] > N
    assert.equal(code(patch(SHARD_HEADER_BYTES + 16 + 12 + 4, [0])), 'TS_ERR_FRAME_MALFORMED'); // col not increasing
    assert.equal(code(patch(SHARD_HEADER_BYTES + 16 + 12 + 8, [2])), 'TS_ERR_FRAME_MALFORMED'); // col >= K
    assert.equal(code(patch(SHARD_HEADER_BYTES + 16 + 24, [0, 0, 0xc0, 0x7f])), 'TS_ERR_NON_FINITE'); // NaN
    assert.equal(code(patch(good.length - 1, [2])), 'TS_ERR_FRAME_MALFORMED'); // label 2
    // Huge counts are refused before anything is allocated.
    assert.equal(code(patch(8, [0xff, 0xff, 0xff, 0xff])), 'TS_ERR_FRAME_TRUNCATED');
  });

  it('carries multi-class labels: byte 1 is the class count, labels above it are refused', () => {
    const ten = { ...tiny, labels: Uint8Array.of(9, 3), classes: 10 };
    const bytes = encodeShard(ten);
    assert.equal(bytes[1], 10);
    const back = decodeShard(bytes);
    assert.equal(back.classes, 10);
    assert.deepEqual([...back.labels], [9, 3]);
    assert.equal(decodeShard(encodeShard(tiny)).classes, undefined, 'binary shards carry no class count');
    const over = encodeShard({ ...ten, labels: Uint8Array.of(10, 3) });
    assert.throws(
      () => decodeShard(over),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_FRAME_MALFORMED',
    );
  });

  it('decodes thousands of mutated buffers into a typed error or a shard that re-encodes to the same bytes', () => {
    const rng = createRng(2024);
    const seeds = [
      tiny,
      randomShard(5, { examples: 8, perExample: 3, keys: 12 }),
      randomShard(6, { examples: 0, perExample: 1, keys: 0 }),
    ].map(encodeShard);
    let decoded = 0;
    for (let n = 0; n < 5000; n++) {
      const base = seeds[n % seeds.length];
      let b = base.slice();
      const kind = rng.int(4);
      if (kind === 0) for (let k = 1 + rng.int(3); k > 0; k--) b[rng.int(b.length)] = rng.int(256);
      else if (kind === 1) b = b.subarray(0, rng.int(b.length + 1));
      else if (kind === 2) b = Uint8Array.from([...b, ...Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))]);
      else {
        // overwrite one header count with a random u32
        const at = 4 * (1 + rng.int(4));
        new DataView(b.buffer, b.byteOffset).setUint32(at, rng.int(2 ** 32), true);
      }
      try {
        const s = decodeShard(b);
        assert.deepEqual(encodeShard(s), b.slice(), 'a decodable buffer is canonical');
        decoded++;
      } catch (err) {
        assert.ok(err instanceof TabshardError, `not a TabshardError: ${err}`);
      }
    }
    assert.ok(decoded > 100, `some mutations (${decoded}) decode (value and label flips)`);
  });
});
