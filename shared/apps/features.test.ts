import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { biasKey, hashFeatures, hashKey, tokenize } from './features.ts';

describe('feature hashing', () => {
  it('tokenizes lower-cased words of 2-25 characters, with a prefix', () => {
    assert.deepEqual(tokenize('Buy NOW: $100 off!! a I x-ray', [], 's:'), [
      's:buy',
      's:now',
      's:$100',
      's:off',
      's:x-ray',
    ]);
  });

  it('hashes into sorted unique keys below 2^keyBits, L2-normalised, bias weighing 1', () => {
    const tokens = tokenize('the cat and the hat and the bat');
    for (const keyBits of [4, 20, 24, 32]) {
      const row = hashFeatures(tokens, { keyBits, hashSeed: 0, values: 'logtf', bias: true });
      for (let i = 0; i < row.keys.length; i++) {
        assert.ok(row.keys[i] < 2 ** keyBits && Number.isInteger(row.keys[i]));
        if (i > 0) assert.ok(row.keys[i] > row.keys[i - 1]);
      }
      const b = row.keys.indexOf(biasKey(keyBits, 0));
      assert.ok(b >= 0);
      let norm = 0;
      row.values.forEach((v, i) => {
        if (i !== b) norm += v * v;
      });
      // With 2^4 keys tokens may share the bias key; otherwise the token part has norm 1.
      if (keyBits > 4) {
        assert.equal(row.values[b], 1);
        assert.ok(Math.abs(norm - 1) < 1e-6);
      }
    }
  });

  it('weighs repeated tokens by 1 + ln(count) (logtf) or 1 (binary)', () => {
    const opts = { keyBits: 20, hashSeed: 3, bias: false } as const;
    const tf = hashFeatures(['a1', 'a1', 'a1', 'b2'], { ...opts, values: 'logtf' });
    const bin = hashFeatures(['a1', 'a1', 'a1', 'b2'], { ...opts, values: 'binary' });
    const at = (row: typeof tf, t: string) => row.values[row.keys.indexOf(hashKey(t, 20, 3))];
    assert.ok(Math.abs(at(tf, 'a1') / at(tf, 'b2') - (1 + Math.log(3))) < 1e-5);
    assert.equal(at(bin, 'a1'), at(bin, 'b2'));
  });

  it('refuses key spaces outside 2^1..2^32', () => {
    assert.throws(
      () => hashFeatures(['x'], { keyBits: 33, hashSeed: 0, values: 'binary', bias: false }),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
    );
  });
});
