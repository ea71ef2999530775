import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClusterInfo } from './cluster.ts';
import { TabshardError } from './errors.ts';
import { parseTableSpec, sameTable, type TableSpec } from './table.ts';

const base = {
  job: 3,
  id: 1,
  name: 'w',
  kind: 'sparse',
  keySpace: 2 ** 20,
  valueLength: 1,
  updater: 'ftrl',
  params: { beta: 1, alpha: 0.4 },
};

const invalid = (v: unknown, why: RegExp) =>
  assert.throws(
    () => parseTableSpec(v),
    (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT' && why.test(e.message),
  );

describe('table spec bounds', () => {
  it('parses value and norm bounds, either alone; absent or {} bounds nothing', () => {
    assert.deepEqual(parseTableSpec({ ...base, bounds: { value: 302.5, norm: 1e4 } }).bounds, {
      value: 302.5,
      norm: 1e4,
    });
    assert.deepEqual(parseTableSpec({ ...base, bounds: { norm: 2 } }).bounds, { norm: 2 });
    assert.deepEqual(parseTableSpec({ ...base, bounds: { value: 1e-9 } }).bounds, { value: 1e-9 });
    for (const spec of [parseTableSpec(base), parseTableSpec({ ...base, bounds: {} })]) {
      assert.equal(spec.bounds, undefined);
      assert.ok(!('bounds' in spec), 'no bounds member at all');
    }
  });

  it('always lists value before norm, whatever order they came in', () => {
    const t = parseTableSpec({ ...base, bounds: { norm: 5, value: 2 } });
    assert.deepEqual(Object.keys(t.bounds!), ['value', 'norm']);
  });

  it('refuses bounds that are not an object of finite numbers > 0, and unknown bounds', () => {
    for (const b of [null, 5, 'x', [1, 2], true]) invalid({ ...base, bounds: b }, /bounds must be an object/);
    invalid({ ...base, bounds: { value: 1, max: 2 } }, /bounds\.max is not a bound/);
    invalid({ ...base, bounds: { l2: 2 } }, /bounds\.l2 is not a bound/);
    for (const k of ['value', 'norm'])
      for (const x of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', null, {}])
        invalid({ ...base, bounds: { [k]: x } }, new RegExp(`bounds\\.${k} must be a finite number > 0`));
  });

  it('sameTable compares bounds', () => {
    const a = parseTableSpec({ ...base, bounds: { value: 10, norm: 20 } });
    assert.ok(sameTable(a, parseTableSpec({ ...base, bounds: { norm: 20, value: 10 } })));
    assert.ok(!sameTable(a, parseTableSpec(base)), 'bounded vs unbounded');
    assert.ok(!sameTable(a, parseTableSpec({ ...base, bounds: { value: 10 } })), 'a bound missing');
    assert.ok(!sameTable(a, parseTableSpec({ ...base, bounds: { value: 10, norm: 21 } })), 'another norm');
    assert.ok(!sameTable(a, parseTableSpec({ ...base, bounds: { value: 11, norm: 20 } })), 'another value');
    assert.ok(sameTable(parseTableSpec(base), parseTableSpec({ ...base, bounds: {} })), '{} is no bounds');
  });

  it('sameTable ignores member order, so a hand-built spec equals its parsed copy', () => {
    const built: TableSpec = {
      bounds: { norm: 20, value: 10 },
      init: { seed: 4, kind: 'uniform', scale: 0.1 } as TableSpec['init'],
      params: { beta: 1, alpha: 0.4 },
      updater: 'ftrl',
      valueLength: 1,
      keySpace: 2 ** 20,
      kind: 'sparse',
      name: 'w',
      id: 1,
      job: 3,
    };
    assert.ok(sameTable(built, parseTableSpec(built)));
    assert.ok(sameTable(parseTableSpec(built), built));
    assert.ok(!sameTable(built, { ...built, init: { kind: 'uniform', scale: 0.1, seed: 5 } }));
    assert.ok(!sameTable(built, { ...built, params: { alpha: 0.4, beta: 2 } }));
  });

  it('survives JSON and the cluster info of RING replies', () => {
    const t = parseTableSpec({ ...base, bounds: { value: 10, norm: 20 } });
    const again = parseTableSpec(JSON.parse(JSON.stringify(t)));
    assert.deepEqual(again, t);
    const info = parseClusterInfo(
      JSON.parse(
        JSON.stringify({
          ring: { version: 1, vnodes: 4, smallTableValues: 0, nodes: ['n1'] },
          addresses: { n1: { memory: 'memory://n1' } },
          tables: [t, parseTableSpec({ ...base, id: 2 })],
        }),
      ),
    );
    assert.deepEqual(info.tables[0].bounds, { value: 10, norm: 20 });
    assert.ok(sameTable(info.tables[0], t));
    assert.equal(info.tables[1].bounds, undefined);
  });
});
