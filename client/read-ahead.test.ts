import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readAhead } from './read-ahead.ts';

test('loads each index once, starts the next one (wrapping) when one is asked for, retries a failed load', async () => {
  const calls: number[] = [];
  let fail = true;
  const get = readAhead(async (i) => {
    calls.push(i);
    if (i === 2 && fail) throw new Error('down');
    return `shard ${i}`;
  }, 3);
  assert.equal(await get(0), 'shard 0');
  assert.deepEqual(calls, [0, 1], 'shard 1 is loading before it is asked for');
  assert.equal(await get(1), 'shard 1');
  assert.deepEqual(calls, [0, 1, 2]);
  await new Promise((r) => setImmediate(r));
  fail = false;
  assert.equal(await get(2), 'shard 2', 'the failed read-ahead is loaded again when asked for');
  assert.equal(await get(0), 'shard 0');
  assert.deepEqual(calls, [0, 1, 2, 2], 'nothing loaded twice once it succeeded');
});
