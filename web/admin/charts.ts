/**
 * A job's held-out curves (uPlot): log-loss and accuracy against seconds since the job started,
 * one point per evaluated iteration. uPlot styles its elements through the CSSOM and its own
 * stylesheet (served from the admin bundle's CSS), so it runs under `style-src 'self'`.
 */
import uPlot from 'uplot';
import { h } from './dom.ts';
import type { Metric } from './types.ts';

export class CurveChart {
  readonly el = h('div', { class: 'chart' });
  private readonly plot: uPlot;
  private readonly xs: number[] = [];
  private readonly ys: number[] = [];

  constructor(title: string, label: string, color: string, range?: [number, number]) {
    this.plot = new uPlot(
      {
        title,
        width: 420,
        height: 200,
        scales: { x: { time: false }, y: range ? { range } : {} },
        axes: [{ label: 'seconds' }, {}],
        series: [{ label: 's' }, { label, stroke: color, width: 2, points: { show: true, size: 5 } }],
      },
      [[], []],
      this.el,
    );
  }

  add(m: Metric, pick: (m: Metric) => number): void {
    this.xs.push(m.ms / 1000);
    this.ys.push(pick(m));
    this.plot.setData([this.xs, this.ys]);
  }

  get points(): number {
    return this.xs.length;
  }
}
