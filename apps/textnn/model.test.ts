import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import { checkTextnnConfig, DEFAULT_TEXTNN, denseOffsets, denseSize } from './model.ts';

describe('text-classifier dense layout', () => {
  it('places W1 (row-major d×H), b1, w2 and b2 back to back in P = dH + 2H + 1 keys', () => {
    assert.equal(denseSize({ dim: 16, hidden: 16 }), 16 * 16 + 16 + 16 + 1);
    assert.equal(denseSize(DEFAULT_TEXTNN), 289);
    assert.deepEqual(denseOffsets({ dim: 3, hidden: 2 }), { w1: 0, b1: 6, w2: 8, b2: 10 });
    assert.equal(denseSize({ dim: 3, hidden: 2 }), 11);
    const o = denseOffsets({ dim: 1, hidden: 1 });
    assert.deepEqual(o, { w1: 0, b1: 1, w2: 2, b2: 3 });
    assert.equal(o.b2 + 1, denseSize({ dim: 1, hidden: 1 }), 'b2 is the last key');
  });

  it('refuses shapes that are not small positive integers', () => {
    for (const cfg of [
      { dim: 0, hidden: 4 },
      { dim: 4, hidden: 1.5 },
      { dim: 5000, hidden: 4 },
      { dim: Number.NaN, hidden: 4 },
    ]) {
      assert.throws(
        () => checkTextnnConfig(cfg),
        (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
      );
      assert.throws(() => denseSize(cfg), TabshardError);
    }
  });
});
