/**
 * Held (robust) aggregation of a table's pushes (PROTOCOL.md §6 TABLE `hold`, docs/architecture.md
 * §9): a node holds the pushes of an iteration's tasks instead of applying each as it lands, and
 * when the job's clock passes the iteration (CLOCK) it estimates, per key, the mean of the n rows
 * the iteration's pushes carried for it — their mean (`sum`), or a robust estimate: the
 * coordinate-wise trimmed mean or median, or the centered-clipping estimate (Karimireddy, He and
 * Jaggi, "Learning from History for Byzantine Robust Optimization", ICML 2021, arXiv 2012.10333)
 * started at the coordinate-wise median — and applies it n times, as n pushes: each row replaced
 * by the estimate. A `sum` updater then gets the rows' sum, and an adaptive one (FTRL, AdaGrad)
 * as many steps as the pushes applied one by one would have given it.
 *
 * Pure: the rule's math and the spec's parsing; the node's buffer is server/node/held.ts.
 */
import { TabshardError } from './errors.ts';

export const AGGREGATE_RULES = ['sum', 'trimmed-mean', 'median', 'centered-clip'] as const;
export type AggregateRule = (typeof AGGREGATE_RULES)[number];

/** How a table holds its pushes: the rule, its parameter, and how task ids map to iterations. */
export interface HoldSpec {
  rule: AggregateRule;
  /** Tasks per iteration (the job's shards): task t belongs to iteration ⌊(t − 1) / tasksPerIteration⌋. */
  tasksPerIteration: number;
  /** trimmed-mean: the fraction cut from each end, in [0, 0.5) (default 0.2). */
  trim?: number;
  /** centered-clip: the clipping radius τ > 0, on each row's L2 distance from the centre (required). */
  clip?: number;
}

/** Centered-clipping rounds (the paper's ℓ; 1 already bounds an outlier's pull by τ / n). */
export const CLIP_ROUNDS = 3;

const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', why);

/** A hold spec from untrusted JSON (TABLE); undefined when absent. */
export function parseHold(v: unknown): HoldSpec | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('hold must be an object');
  const o = v as Record<string, unknown>;
  if (!(AGGREGATE_RULES as readonly unknown[]).includes(o.rule))
    throw bad(`hold.rule must be one of ${AGGREGATE_RULES.join(', ')}`);
  const n = o.tasksPerIteration;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 0xffffffff)
    throw bad('hold.tasksPerIteration must be an integer ≥ 1');
  const out: HoldSpec = { rule: o.rule as AggregateRule, tasksPerIteration: n };
  if (o.trim !== undefined) {
    if (typeof o.trim !== 'number' || !(o.trim >= 0 && o.trim < 0.5)) throw bad('hold.trim must be in [0, 0.5)');
    out.trim = o.trim;
  }
  if (o.clip !== undefined) {
    if (typeof o.clip !== 'number' || !Number.isFinite(o.clip) || o.clip <= 0) throw bad('hold.clip must be > 0');
    out.clip = o.clip;
  }
  if (out.rule === 'centered-clip' && out.clip === undefined) throw bad('hold.clip is required by centered-clip');
  return out;
}

/**
 * A rule as the command line spells it — `sum`, `median`, `trimmed-mean[:trim]`,
 * `centered-clip:τ` — checked as parseHold checks it; TS_ERR_INVALID_ARGUMENT otherwise.
 */
export function parseAggregateFlag(s: string): Omit<HoldSpec, 'tasksPerIteration'> {
  const [rule, param, ...rest] = s.split(':');
  const flag = (why: string) => bad(`--aggregate ${s}: ${why} (sum, median, trimmed-mean[:β], centered-clip:τ)`);
  if (rest.length > 0) throw flag('rule[:parameter]');
  const x = param === undefined ? undefined : Number(param);
  if (param !== undefined && (rule === 'sum' || rule === 'median')) throw flag(`${rule} takes no parameter`);
  const o = { rule, tasksPerIteration: 1, ...(rule === 'trimmed-mean' ? { trim: x } : { clip: x }) };
  try {
    const { tasksPerIteration: _, ...spec } = parseHold(o)!;
    return spec;
  } catch (err) {
    throw flag(err instanceof TabshardError ? err.message.replace(/^[^:]*: /, '') : String(err));
  }
}

/** Scratch arrays reused across keys (grown as needed). */
export interface AggregateScratch {
  column: Float64Array;
  centre: Float64Array;
  step: Float64Array;
}

export function aggregateScratch(): AggregateScratch {
  return { column: new Float64Array(16), centre: new Float64Array(16), step: new Float64Array(16) };
}

/**
 * The rule's estimate of the mean of `n` rows of `d` floats (row r at `rows[at(r) …]`) into
 * `out[o … o + d)`.
 */
export function aggregateRows(
  spec: HoldSpec,
  rows: Float32Array,
  at: (r: number) => number,
  n: number,
  d: number,
  out: Float32Array,
  o: number,
  s: AggregateScratch,
): void {
  if (s.column.length < n) s.column = new Float64Array(Math.max(n, 2 * s.column.length));
  if (s.centre.length < d) {
    s.centre = new Float64Array(Math.max(d, 2 * s.centre.length));
    s.step = new Float64Array(s.centre.length);
  }
  const col = s.column.subarray(0, n);
  if (spec.rule === 'sum') {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let r = 0; r < n; r++) sum += rows[at(r) + j];
      out[o + j] = sum / n;
    }
    return;
  }
  const cut = spec.rule === 'trimmed-mean' ? Math.floor((spec.trim ?? 0.2) * n) : 0;
  for (let j = 0; j < d; j++) {
    for (let r = 0; r < n; r++) col[r] = rows[at(r) + j];
    col.sort();
    if (spec.rule === 'trimmed-mean') {
      let sum = 0;
      for (let r = cut; r < n - cut; r++) sum += col[r];
      s.centre[j] = sum / (n - 2 * cut);
    } else s.centre[j] = n % 2 === 1 ? col[(n - 1) / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
  }
  if (spec.rule === 'centered-clip') {
    const tau = spec.clip!;
    for (let round = 0; round < CLIP_ROUNDS; round++) {
      s.step.fill(0, 0, d);
      for (let r = 0; r < n; r++) {
        const base = at(r);
        let sq = 0;
        for (let j = 0; j < d; j++) sq += (rows[base + j] - s.centre[j]) ** 2;
        const dist = Math.sqrt(sq);
        const scale = dist > tau ? tau / dist : 1;
        for (let j = 0; j < d; j++) s.step[j] += scale * (rows[base + j] - s.centre[j]);
      }
      for (let j = 0; j < d; j++) s.centre[j] += s.step[j] / n;
    }
  }
  for (let j = 0; j < d; j++) out[o + j] = s.centre[j];
}
