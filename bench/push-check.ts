/**
 * Micro-benchmark of a server node's check of a push's values (server/node/table.ts), on a 1M-float
 * (4 MB) push: the finiteness check of before the push bounds (four sums of x·0, copied here as the
 * reference), the one pass that replaced it (scanValues: finiteness, max |v| and Σv²), and whole
 * Table.push calls of a dense `sum` table without and with bounds (the updater included).
 * Variants run interleaved in rounds, so a busy machine slows them alike; prints one JSON line per
 * variant: the smallest and the median of the rounds' median milliseconds.
 *
 *   node --import tsx bench/push-check.ts [--rounds 15]
 */
import { parseArgs } from 'node:util';
import { scanValues, Table } from '../server/node/table.ts';
import type { TableSpec } from '../shared/table.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '15' } } });
const N = 1 << 20;
const ROUNDS = Number(args.rounds);
const REPS = 40;

/** The check as it was: first NaN or ±Infinity, or -1 (x·0 is 0 for finite x, NaN otherwise). */
function firstNonFiniteBefore(v: Float32Array): number {
  const n = v.length & ~3;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i < n; i += 4) {
    a += v[i] * 0;
    b += v[i + 1] * 0;
    c += v[i + 2] * 0;
    d += v[i + 3] * 0;
  }
  for (; i < v.length; i++) a += v[i] * 0;
  if (a + b + c + d === 0) return -1;
  for (i = 0; Number.isFinite(v[i]); i++);
  return i;
}

const grad = Float32Array.from({ length: N }, (_, i) => Math.sin(i) * 1e-3);
const spec = (bounds?: TableSpec['bounds']): TableSpec => ({
  job: 0,
  id: 1,
  name: 't',
  kind: 'dense',
  keySpace: N,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
  ...(bounds ? { bounds } : {}),
});
const plain = new Table(spec());
const bounded = new Table(spec({ value: 1, norm: 1e3 }));
const range = { kind: 'range', begin: 0, end: N } as const;

let sink = 0;
const out = new Float64Array(2);
const variants: Record<string, () => void> = {
  'check: x*0 sums (before)': () => {
    sink += firstNonFiniteBefore(grad);
  },
  'check: scanValues (after)': () => {
    scanValues(grad, out);
    sink += out[0];
  },
  'Table.push, no bounds': () => {
    plain.push(range, grad, null);
  },
  'Table.push, value and norm bounds': () => {
    bounded.push(range, grad, null);
  },
};

for (const f of Object.values(variants)) for (let i = 0; i < 100; i++) f();
const medians: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++)
  for (const [name, f] of Object.entries(variants)) {
    const s: number[] = [];
    for (let k = 0; k < REPS; k++) {
      const t0 = performance.now();
      f();
      s.push(performance.now() - t0);
    }
    s.sort((a, b) => a - b);
    medians[name] = [...(medians[name] ?? []), s[REPS >> 1]];
  }
for (const [name, m] of Object.entries(medians)) {
  m.sort((a, b) => a - b);
  const ms = (x: number) => Number(x.toFixed(3));
  console.log(
    JSON.stringify({ bench: 'push-check', variant: name, floats: N, msMin: ms(m[0]), msMedian: ms(m[m.length >> 1]) }),
  );
}
if (Number.isNaN(sink)) console.log('');
