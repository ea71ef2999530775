/**
 * The Count-Min sketch job (the paper's third workload, Li et al. §5.3; sketch.ts has the math):
 * the tokens of the SpamAssassin corpus (server/data/spam-tokens.ts) counted into a depth × width
 * sum table by the workers, one pass over the stream per iteration. The job keeps the exact
 * counts, so after each pass it reads the whole sketch and checks every item's estimate.
 *
 * What a job's metrics mean here: `accuracy` is the share of items whose estimate is within
 * ε·N of the exact count (N: all counts applied), which the sketch promises for at least 1 − δ
 * of them; the target is 1 − δ. `logLoss` is the mean overestimate in units of ε·N (0: every
 * estimate exact; 1: on average at the bound). An estimate below the exact count would be a bug
 * (a lost or doubled push): the evaluation counts those too (meta `under` of the last one).
 *
 * Defaults: ε = 10⁻⁴, δ = 0.02 (width 27,183, depth 4; 108,732 keys). Push bounds, PROVEN from the
 * data as logreg's: a task adds exactly its shard's counts, so value = the largest count any
 * shard adds to one counter and norm = the largest L2 norm of a shard's counts, × 1.01 (float32
 * sums of whole numbers below 2^24 are exact; the 1 % is margin).
 */
import { createHash } from 'node:crypto';
import { itemId, prepareSpamTokens } from '../../server/data/spam-tokens.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { JobApp, JobDataOptions, PreparedJob, TableRead } from '../job-contract.ts';
import {
  cellOf,
  checkSketch,
  estimate,
  guarantee,
  rowSeeds,
  type SketchConfig,
  shardCells,
  sketchFor,
} from './sketch.ts';

export const CMS_EPSILON = 1e-4;
export const CMS_DELTA = 0.02;
/** One pass over the stream. */
export const CMS_ITERATIONS = 1;
const BOUND_SLACK = 1.01;

const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `cms: ${why}`);

/** The sketch's shape from the job's model settings ({depth, width}; default from ε, δ). */
function sketchOf(opts: Omit<JobDataOptions, 'job'>): SketchConfig {
  for (const k of Object.keys(opts.model ?? {})) if (k !== 'depth' && k !== 'width') throw bad(`no model setting ${k}`);
  const d = sketchFor(CMS_EPSILON, CMS_DELTA, opts.seed ?? 1);
  return checkSketch({ depth: opts.model?.depth ?? d.depth, width: opts.model?.width ?? d.width, seed: d.seed });
}

function check(opts: Omit<JobDataOptions, 'job'>): void {
  if (opts.data !== undefined && opts.data !== 'spam')
    throw bad(`data must be spam (the corpus's token stream), not ${JSON.stringify(opts.data)}`);
  if (opts.examples !== undefined) throw bad('the token stream is the whole corpus: --examples does not apply');
  sketchOf(opts);
}

/** What the evaluation and queries compare: each item's exact count over one pass. */
interface Exact {
  counts: Map<number, number>;
  /** N: all counts of one pass. */
  total: number;
}

/** Estimates of every item against `passes` × its exact count. */
function measure(cfg: SketchConfig, sketch: Float32Array, exact: Exact) {
  const seeds = rowSeeds(cfg);
  let applied = 0;
  for (let j = 0; j < cfg.width; j++) applied += sketch[j]; // row 0 holds every count once
  const passes = applied / exact.total;
  const bound = guarantee(cfg).epsilon * applied;
  let within = 0;
  let under = 0;
  let over = 0;
  for (const [x, c] of exact.counts) {
    const err = estimate(cfg, seeds, x, (k) => sketch[k]) - passes * c;
    if (err < -1e-3 * passes * c - 1e-6) under++;
    if (err <= bound) within++;
    over += Math.max(0, err);
  }
  const n = exact.counts.size;
  return { passes, bound, within: within / n, under, meanOver: over / n };
}

async function prepareCms(opts: JobDataOptions): Promise<PreparedJob> {
  check(opts);
  const cfg = sketchOf(opts);
  const { epsilon, delta } = guarantee(cfg);
  const data = prepareSpamTokens({ seed: opts.seed, shards: opts.shards, cacheDir: opts.cacheDir });
  const decoded = data.shards.map((b) => decodeShard(b));
  const exact: Exact = { counts: new Map(), total: 0 };
  let docs = 0;
  let value = 0;
  let norm = 0;
  for (const s of decoded) {
    docs += s.labels.length;
    for (let i = 0; i < s.col.length; i++) {
      const x = s.keys[s.col[i]];
      exact.counts.set(x, (exact.counts.get(x) ?? 0) + s.val[i]);
      exact.total += s.val[i];
    }
    const { counts } = shardCells(cfg, s);
    let sq = 0;
    for (const c of counts) {
      value = Math.max(value, c);
      sq += c * c;
    }
    norm = Math.max(norm, Math.sqrt(sq));
  }
  const table: TableSpec = {
    job: opts.job,
    id: 1,
    name: 'sketch',
    kind: 'dense',
    keySpace: cfg.depth * cfg.width,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
    bounds: { value: value * BOUND_SLACK, norm: norm * BOUND_SLACK },
  };
  const read = async (r: TableRead) => r(table, { begin: 0, end: table.keySpace });
  const sizes = data.shards.map((b) => b.byteLength);
  const meta = {
    dataset: { name: 'spam-tokens', label: data.config.corpus, config: data.config },
    documents: docs,
    items: exact.counts.size,
    inserts: exact.total,
    sketch: { ...cfg, epsilon, delta, keys: table.keySpace },
    shardBytes: { min: Math.min(...sizes), max: Math.max(...sizes), total: sizes.reduce((a, b) => a + b, 0) },
    cached: data.cached,
    prepareMs: data.ms,
    under: 0,
  };
  return {
    app: 'cms',
    job: opts.job,
    version: createHash('sha256')
      .update(`cms\n${data.version}\n${JSON.stringify(table)}`)
      .digest('hex')
      .slice(0, 16),
    shards: data.shards,
    tables: [table],
    iterations: CMS_ITERATIONS,
    target: { accuracy: 1 - delta },
    model: { depth: cfg.depth, width: cfg.width, seed: cfg.seed },
    meta,
    about: [
      `Counts the ${exact.total} tokens (${exact.counts.size} distinct) of the public SpamAssassin e-mail corpus,`,
      `split into ${data.shards.length} shards, into a Count-Min sketch of ${cfg.depth} × ${cfg.width} counters on the`,
      `servers (the parameter-server paper's third workload). The goal: at least ${((1 - delta) * 100).toFixed(0)} %`,
      `of the items estimated within ε·N (ε = ${epsilon.toPrecision(2)}) of their exact count.`,
    ].join(' '),
    pushScopes: (shard) => [shardCells(cfg, decoded[shard]).cells],
    async evaluate(r) {
      const m = measure(cfg, await read(r), exact);
      meta.under = m.under;
      return { accuracy: m.within, logLoss: m.bound > 0 ? m.meanOver / m.bound : 0 };
    },
    async query(r, q) {
      const word = q.item;
      if (typeof word !== 'string' || word.length === 0 || word.length > 200)
        throw bad('a query is ?item=TOKEN (a token as the corpus was cut: lower case; subject words as s:word)');
      const item = word.toLowerCase();
      const x = itemId(item, data.config.hashSeed);
      const seeds = rowSeeds(cfg);
      // The item's counters, one per row: rows are consecutive key ranges, so the keys are sorted.
      const cells = Float64Array.from({ length: cfg.depth }, (_, row) => cellOf(cfg, seeds, row, x));
      const v = await r(table, cells);
      return {
        item,
        estimate: Math.min(...v),
        exactPerPass: exact.counts.get(x) ?? 0,
        boundPerPass: epsilon * exact.total,
      };
    },
  };
}

/** The Count-Min sketch's job side (job-contract.ts). */
export const cmsJob: JobApp = {
  name: 'cms',
  summary: 'a Count-Min sketch of the tokens of the SpamAssassin corpus, checked against the exact counts',
  check,
  prepare: prepareCms,
};
