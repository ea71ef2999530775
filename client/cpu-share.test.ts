import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuShare } from './cpu-share.ts';

describe('CpuShare (the volunteer page gate)', () => {
  it('rests c·(1−f)/f after a task that computed c ms', async () => {
    const slept: number[] = [];
    const g = new CpuShare({ share: 0.25, sleep: async (ms) => void slept.push(ms) });
    await g.gate(); // nothing computed yet: no rest
    g.computed(100);
    await g.gate();
    g.share = 0.5;
    g.computed(40);
    await g.gate();
    g.share = 1;
    g.computed(40);
    await g.gate();
    assert.deepEqual(slept, [300, 40]);
    assert.equal(g.restedMs, 340);
  });

  it('clamps the share to [0.05, 1]', () => {
    assert.equal(new CpuShare({ share: 0 }).share, 0.05);
    assert.equal(new CpuShare({ share: 3 }).share, 1);
    assert.equal(new CpuShare({ share: Number.NaN }).share, 1);
  });

  it('a pause holds the next task until resume', async () => {
    const changes: boolean[] = [];
    const g = new CpuShare({ onchange: (s) => changes.push(s.paused) });
    g.pause();
    let passed = false;
    const p = g.gate().then(() => {
      passed = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(passed, false);
    g.resume();
    await p;
    assert.equal(passed, true);
    assert.deepEqual(changes, [true, false]);
  });
});
