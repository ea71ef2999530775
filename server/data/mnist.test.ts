import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeShard } from '../../shared/apps/shard.ts';
import { MNIST_IMAGES, prepareMnist } from './mnist.ts';

describe('mnist data', () => {
  it('holds out the first of a seeded order and deals every other image to a shard once', () => {
    const d = prepareMnist({ shards: 7, heldout: 1000, cacheDir: null });
    const held = decodeShard(d.heldout);
    const shards = d.shards.map((b) => decodeShard(b));
    assert.equal(held.labels.length, 1000);
    assert.equal(
      shards.reduce((n, s) => n + s.labels.length, 0),
      MNIST_IMAGES - 1000,
    );
    for (const s of [held, ...shards]) {
      assert.equal(s.classes, 10);
      assert.ok(s.keys[s.keys.length - 1] < 784);
      for (let j = 0; j < s.val.length; j++) assert.ok(s.val[j] > 0 && s.val[j] <= 1);
    }
    const counts = new Array(10).fill(0);
    for (const l of held.labels) counts[l]++;
    assert.ok(
      counts.every((n) => n > 60 && n < 140),
      `every digit is held out: ${counts}`,
    );
    assert.equal(prepareMnist({ shards: 7, heldout: 1000, cacheDir: null }).version, d.version, 'deterministic');
    assert.notEqual(prepareMnist({ shards: 7, heldout: 1000, seed: 2, cacheDir: null }).version, d.version);
  });

  it('refuses shard and held-out counts that do not fit', () => {
    assert.throws(() => prepareMnist({ shards: 0, cacheDir: null }), /shards must be/);
    assert.throws(() => prepareMnist({ heldout: MNIST_IMAGES, cacheDir: null }), /heldout must be/);
  });
});
