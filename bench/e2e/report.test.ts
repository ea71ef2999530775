/**
 * bench:e2e's arithmetic (bench/e2e/report.ts): the baseline's time to a distributed run's final
 * log-loss, the ratio and its fallback, per-task medians pooled over workers, and the summary's
 * checks of the lead's targets. (The bench itself is timing: `npm run bench:e2e`, not a test.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskTimes } from '../../client/task-times.ts';
import { baselineTo, pooledMedians, ratio, summarize } from './report.ts';

const points = [
  { iteration: 1, ms: 300, logLoss: 0.2, accuracy: 0.9 },
  { iteration: 2, ms: 500, logLoss: 0.1, accuracy: 0.95 },
  { iteration: 3, ms: 700, logLoss: 0.06, accuracy: 0.98 },
];

const task = (t: number, pullMs: number, abandoned = false): TaskTimes => ({
  task: t,
  attempt: 0,
  shard: 0,
  iteration: 0,
  leaseMs: 1,
  pullMs,
  computeMs: 2,
  pushMs: 3,
  doneMs: 1,
  waitMs: 5,
  leaseWaitMs: 1,
  restMs: 0,
  cycleMs: 7,
  sendMs: 1,
  frames: 9,
  ...(abandoned ? { abandoned } : {}),
});

describe('bench:e2e report', () => {
  it("takes the baseline's first iteration at or below the distributed run's final log-loss", () => {
    assert.deepEqual(baselineTo(points, 0.1), { msToSame: 500, iterationToSame: 2, ms: 700, finalLogLoss: 0.06 });
    assert.deepEqual(ratio(1000, baselineTo(points, 0.1)), { ratio: 2, reached: true });
    // Better than the baseline ever got: the ratio is against its full time, and says so.
    assert.deepEqual(ratio(1400, baselineTo(points, 0.05)), { ratio: 2, reached: false });
  });

  it('pools per-task medians over workers, leaving abandoned tasks out', () => {
    const m = pooledMedians([
      [task(1, 10), task(2, 30)],
      [task(3, 20), task(4, 1000, true)],
    ]);
    assert.equal(m.n, 3);
    assert.equal(m.pullMs, 20);
    assert.equal(m.frames, 9);
  });

  it('checks ratio ≤ 1.3 at one worker and two workers not slower than one (paired by repeat), per prefetch setting', () => {
    const row = (workers: number, prefetch: number, wallMs: number, r: number, repeat = 0) => ({
      repeat,
      workers,
      prefetch,
      wallMs,
      ratio: r,
      finalLogLoss: 0.0592,
      medians: {},
    });
    const s = summarize([
      row(1, 1, 1600, 1.2, 0),
      row(1, 1, 1800, 1.4, 1),
      row(1, 1, 1700, 1.25, 2),
      row(2, 1, 1500, 1.2, 0),
      row(2, 1, 1900, 1.5, 1),
      row(2, 1, 1600, 1.2, 2),
    ]);
    // Paired by repeat: 1500/1600, 1900/1800, 1600/1700 → median 0.941.
    assert.deepEqual(s.checks, [
      { prefetch: 1, ratioAt1: 1.25, ratioMet: true, twoOverOne: 0.941, twoNotSlower: true },
    ]);
    assert.equal(s.groups[0].wallMs, 1700);
    assert.equal(s.groups[0].runs, 3);
    const slower = summarize([row(1, 0, 1000, 1.5), row(2, 0, 1200, 1.8), row(1, 1, 800, 1.2), row(2, 1, 1000, 1.5)]);
    assert.deepEqual(slower.checks[0], {
      prefetch: 0,
      ratioAt1: 1.5,
      ratioMet: false,
      twoOverOne: 1.2,
      twoNotSlower: false,
    });
    // The overlap's effect, paired: prefetch 1 over prefetch 0 per worker count.
    assert.deepEqual(
      slower.overlap.map((o) => [o.workers, o.wall]),
      [
        [1, 0.8],
        [2, 0.833],
      ],
    );
  });
});
