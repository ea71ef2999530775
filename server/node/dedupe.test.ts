/**
 * PushDedupe's record travels: export → merge on another node gives the same answers (what a
 * replica and a migrated range rely on), and untrusted record JSON is checked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import { PushDedupe, parseDedupeRecords, WINDOW } from './dedupe.ts';

const stamp = (task: number, seq: number, attempt = 0, worker = 7) => ({ worker, task, attempt, seq });

test('an exported record merged elsewhere answers the same (tasks, fences, ad-hoc windows)', () => {
  const a = new PushDedupe();
  a.record(stamp(3, 0));
  a.record(stamp(3, 2, 1));
  a.fence(3, 1);
  a.fence(9, 4);
  for (const seq of [0, 5, WINDOW + 10]) a.record(stamp(0, seq));
  const b = new PushDedupe();
  b.merge(parseDedupeRecords(JSON.parse(JSON.stringify(a.export()))));
  for (const d of [a, b]) {
    assert.equal(d.seen(stamp(3, 0, 1)), true);
    assert.equal(d.seen(stamp(3, 2, 1)), true);
    assert.equal(d.seen(stamp(3, 1, 1)), false);
    assert.throws(
      () => d.seen(stamp(3, 1, 0)),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_LEASE_EXPIRED',
    );
    assert.throws(
      () => d.seen(stamp(9, 0, 3)),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_LEASE_EXPIRED',
    );
    assert.equal(d.seen(stamp(0, WINDOW + 10)), true);
    assert.equal(d.seen(stamp(0, WINDOW + 9)), false);
    assert.throws(
      () => d.seen(stamp(0, 5)),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_PUSH_TOO_OLD',
    );
  }
  // Merging is a union: b's own records stay.
  b.record(stamp(4, 1));
  b.merge(a.export());
  assert.equal(b.seen(stamp(4, 1)), true);
});

test('a replicated copy older than the window marks nothing', () => {
  const d = new PushDedupe();
  d.record(stamp(0, 3 * WINDOW));
  d.record(stamp(0, WINDOW)); // late copy, outside the window
  assert.equal(d.seen(stamp(0, 3 * WINDOW - WINDOW + 1)), false);
  assert.equal(d.seen(stamp(0, 2 * WINDOW + 1)), false);
});

test('malformed record JSON is refused with a code', () => {
  for (const bad of [
    null,
    1,
    {},
    { tasks: [], workers: [[1, ['x']]] },
    { tasks: [[1, -1, []]], workers: [] },
    { tasks: [[1]], workers: [] },
  ])
    assert.throws(
      () => parseDedupeRecords(bad),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_FRAME_MALFORMED',
      JSON.stringify(bad),
    );
});
