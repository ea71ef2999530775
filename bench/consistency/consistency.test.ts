/**
 * The study's pieces that do not need a cluster: mode names, the target search, the SVG chart.
 * (The study itself is `npm run bench:consistency`; a cluster run is timing, which belongs in a
 * benchmark, not a test.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lineChartSvg, ticks } from './plot.ts';
import { firstReached, parseMode } from './run.ts';

describe('consistency study', () => {
  it('parses mode names into τ, eager SSP, staleness-aware learning rates and backup tasks', () => {
    const off = { eager: false, stalenessLr: false, backups: false };
    assert.deepEqual(parseMode('bsp'), { name: 'bsp', tau: 0, ...off });
    assert.deepEqual(parseMode('tau8'), { name: 'tau8', tau: 8, ...off });
    assert.deepEqual(parseMode('asp-slr'), { name: 'asp-slr', tau: null, ...off, stalenessLr: true });
    assert.deepEqual(parseMode('tau2-eager-slr'), {
      name: 'tau2-eager-slr',
      tau: 2,
      ...off,
      eager: true,
      stalenessLr: true,
    });
    assert.deepEqual(parseMode('bsp-backup'), { name: 'bsp-backup', tau: 0, ...off, backups: true });
    for (const bad of ['tau', 'tauX', 'ssp', 'bsp-fast', ''])
      assert.throws(() => parseMode(bad), TypeError, `mode ${JSON.stringify(bad)}`);
  });

  it('finds the first evaluation at or below the target', () => {
    const ms = [
      { iteration: 0, ms: 100, logLoss: 0.5, accuracy: 0.8 },
      { iteration: 1, ms: 180, logLoss: 0.2, accuracy: 0.9 },
      { iteration: 2, ms: 260, logLoss: 0.1, accuracy: 0.95 },
    ];
    assert.equal(firstReached(ms, 0.2)?.ms, 180);
    assert.equal(firstReached(ms, 0.05), undefined);
  });

  it('draws one polyline per series inside the plot area, with escaped labels and a target line', () => {
    assert.deepEqual(ticks(0, 1000), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(ticks(0.1, 0.35), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    const svg = lineChartSvg({
      title: 'a < b',
      xLabel: 'ms',
      yLabel: 'loss',
      series: [
        {
          name: 'bsp',
          points: [
            [0, 0.7],
            [500, 0.3],
            [1000, 0.2],
          ],
        },
        {
          name: 'tau<2>',
          points: [
            [0, 0.7],
            [400, 0.25],
          ],
        },
      ],
      target: { y: 0.25, label: 'target' },
    });
    assert.equal(svg.match(/<polyline/g)?.length, 2);
    assert.ok(svg.includes('a &lt; b') && svg.includes('tau&lt;2&gt;') && !svg.includes('tau<2>'));
    assert.ok(svg.includes('<title>a &lt; b</title>'), 'the chart is titled for screen readers');
    assert.ok(svg.includes('stroke-dasharray'), 'the target line is drawn');
    // Every point lies inside the plot rectangle (left 64 … 590, top 36 … 392 for 760 × 440).
    for (const m of svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)) {
      const [x, y] = [Number(m[1]), Number(m[2])];
      assert.ok(x >= 64 && x <= 590 && y >= 36 && y <= 392, `point ${x},${y} outside`);
    }
  });
});
