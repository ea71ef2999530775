/**
 * The gradient timing loop the backend probe picks by (the probe itself: apps/logreg/gradient.test.ts):
 * what a timing reports about its shard, its calls and their median.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { randomShard } from '../shared/apps/random-shard.ts';
import { measureGradient } from './gradient-timing.ts';

describe('gradient timing', () => {
  const shard = randomShard(3, { examples: 40, perExample: 8, keys: 256 });

  it('reports the shard, the timed calls and their median on the current backend', async () => {
    assert.ok(await tf.setBackend('cpu'));
    const t = await measureGradient(tf, shard, { reps: 5, warmup: 1 });
    assert.equal(t.backend, 'cpu');
    assert.deepEqual([t.examples, t.nonZeros, t.keys, t.reps], [40, 40 * 8, 256, 5]);
    assert.ok(t.msMin > 0 && t.msMin <= t.msMedian, `min ${t.msMin}, median ${t.msMedian}`);
    assert.ok(Math.abs(t.examplesPerSec - 40 / (t.msMedian / 1000)) < 1e-6);
  });

  it('times at least one call even when asked for none', async () => {
    assert.equal((await measureGradient(tf, shard, { reps: 0, warmup: 0 })).reps, 1);
  });
});
