import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, sleep } from './clock-source.ts';

describe('ManualClock', () => {
  it('fires due timers in (due time, creation) order, each at its own due time', () => {
    const c = new ManualClock(100);
    const seen: string[] = [];
    c.setTimeout(() => seen.push(`b@${c.now()}`), 20);
    c.setTimeout(() => seen.push(`a@${c.now()}`), 10);
    c.setTimeout(() => seen.push(`c@${c.now()}`), 20);
    const x = c.setTimeout(() => seen.push('cancelled'), 5);
    c.clearTimeout(x);
    c.advance(15);
    assert.deepEqual(seen, ['a@110']);
    assert.equal(c.now(), 115);
    c.advance(100);
    assert.deepEqual(seen, ['a@110', 'b@120', 'c@120']);
    assert.equal(c.now(), 215);
    assert.equal(c.pending, 0);
  });

  it('runs timers set by callbacks when they fall due within the same advance', () => {
    const c = new ManualClock();
    const ticks: number[] = [];
    const tick = () => {
      ticks.push(c.now());
      c.setTimeout(tick, 30);
    };
    c.setTimeout(tick, 30);
    c.advance(100);
    assert.deepEqual(ticks, [30, 60, 90]);
    assert.equal(c.nextAt(), 120);
  });

  it('sleep resolves once the clock passes the deadline', async () => {
    const c = new ManualClock();
    let done = false;
    const p = sleep(c, 50).then(() => {
      done = true;
    });
    c.advance(49);
    await Promise.resolve();
    assert.equal(done, false);
    c.advance(1);
    await p;
    assert.equal(done, true);
  });
});
