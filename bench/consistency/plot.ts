/**
 * A small SVG line chart (no dependencies): one polyline per series, axes with round ticks, a
 * legend, an optional horizontal target line. Used by bench:consistency for held-out log-loss vs
 * time per consistency model.
 */

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** A horizontal reference line (e.g. the target log-loss). */
  target?: { y: number; label: string };
  width?: number;
  height?: number;
}

const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];

/** Round tick values covering [lo, hi] (about `n` of them). */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The chart as an SVG document. */
export function lineChartSvg(o: ChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 440;
  const m = { left: 64, right: 170, top: 36, bottom: 48 };
  const pts = o.series.flatMap((s) => s.points);
  const ys = pts.map((p) => p[1]).concat(o.target ? [o.target.y] : []);
  const x0 = 0;
  const x1 = Math.max(1e-9, ...pts.map((p) => p[0]));
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const X = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const Y = (y: number) => m.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
  ];
  for (const t of ticks(x0, x1)) {
    out.push(`<line x1="${f(X(t))}" y1="${m.top}" x2="${f(X(t))}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${f(X(t))}" y="${m.top + ph + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    out.push(`<line x1="${m.left}" y1="${f(Y(t))}" x2="${m.left + pw}" y2="${f(Y(t))}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  if (o.target) {
    const y = f(Y(o.target.y));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${m.left + pw - 4}" y="${Number(y) - 4}" text-anchor="end">${esc(o.target.label)}</text>`);
  }
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    // Past the palette, the series are dashed so no two look alike.
    const dash = i >= COLORS.length ? ' stroke-dasharray="6 3"' : '';
    const d = s.points.map(([x, y]) => `${f(X(x))},${f(Y(y))}`).join(' ');
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${dash} points="${d}"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${f(X(x))}" cy="${f(Y(y))}" r="2.5" fill="${c}"/>`);
    const ly = m.top + 10 + i * 18;
    out.push(
      `<line x1="${m.left + pw + 12}" y1="${ly}" x2="${m.left + pw + 32}" y2="${ly}" stroke="${c}" stroke-width="2"/>`,
    );
    out.push(`<text x="${m.left + pw + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
