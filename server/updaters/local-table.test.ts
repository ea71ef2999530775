import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import { initValue } from '../node/init.ts';
import { LocalTable, laggedPushes } from './local-table.ts';

const spec = (over: Partial<TableSpec> = {}): TableSpec => ({
  job: 1,
  id: 1,
  name: 't',
  kind: 'sparse',
  keySpace: 1000,
  valueLength: 3,
  updater: 'sgd',
  params: { lr: 0.5 },
  init: { kind: 'normal', std: 1, seed: 4 },
  ...over,
});

describe('LocalTable', () => {
  it('starts at the initial values a server node would return, per key and element', () => {
    const t = new LocalTable(spec(), [500, 7, 7, 42]);
    const keys = Float64Array.of(7, 42, 500);
    const v = t.pull(keys);
    assert.equal(v.length, 9);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) assert.equal(v[i * 3 + j], Math.fround(initValue(spec().init, keys[i], j)));
  });

  it('applies the updater to the pushed rows only, counting pushes as steps', () => {
    const t = new LocalTable(spec({ init: { kind: 'constant', value: 1 } }), [1, 2, 3]);
    t.push(Float64Array.of(1, 3), Float32Array.of(1, 2, 3, 4, 5, 6));
    assert.deepEqual([...t.pull(Float64Array.of(1, 2, 3))], [0.5, 0, -0.5, 1, 1, 1, -1, -1.5, -2]);
    assert.equal(t.pushes, 1);
    const code = (c: string) => (e: unknown) => e instanceof TabshardError && e.code === c;
    assert.throws(() => t.push(Float64Array.of(1), new Float32Array(2)), code('TS_ERR_VALUE_LENGTH'));
    assert.throws(() => t.pull(Float64Array.of(4)), code('TS_ERR_INVALID_ARGUMENT'));
    assert.throws(() => new LocalTable(spec(), [1000]), code('TS_ERR_KEY_OUT_OF_RANGE'));
  });

  it('keeps per-element updater state (adagrad) across pushes', () => {
    const t = new LocalTable(
      spec({ updater: 'adagrad', params: { lr: 1, initialAccumulator: 0 }, init: { kind: 'zeros' } }),
      [5],
    );
    const k = Float64Array.of(5);
    t.push(k, Float32Array.of(3, 0, -4));
    t.push(k, Float32Array.of(4, 0, 3));
    // Adagrad: w −= lr · g / sqrt(Σ g²): −3/3 − 4/5 and 4/4 − 3/5.
    const v = t.pull(k);
    assert.ok(Math.abs(v[0] - -1.8) < 1e-6 && v[1] === 0 && Math.abs(v[2] - 0.4) < 1e-6, `${v}`);
  });
});

describe('laggedPushes', () => {
  it('applies each push after `lag` later ones were queued, the rest on flush', () => {
    const applied: number[] = [];
    const q = laggedPushes(2);
    for (let i = 0; i < 5; i++) {
      q.add(() => applied.push(i));
      assert.equal(applied.length, Math.max(0, i - 1));
    }
    q.flush();
    assert.deepEqual(applied, [0, 1, 2, 3, 4]);
    assert.throws(() => laggedPushes(-1), TabshardError);
  });
});
