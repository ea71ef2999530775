/**
 * Synthetic click-through data for the logistic-regression job, at the shape of the paper's ad
 * logs: every example is F categorical fields (ad, site, user, hour, …; vocabularies from 3 to
 * millions of values, geometrically spaced), one value per field drawn from a Zipf law (so feature
 * frequencies are power-law), each (field, value) hashed to a key in 2^keyBits, plus a few
 * field-pair crosses and a bias key. Feature values are binary (1): the fields are one-hot, so every
 * row has the same number of non-zeros and 1/√nnz would only rescale every row alike; 1 keeps the
 * planted margin a plain sum of weights, as in CTR practice.
 *
 * Labels come from a planted sparse model: a (field, value) has a non-zero true weight with
 * probability 0.5/√(1 + rank/100) (frequent values more often), of random sign and magnitude
 * (0.5..1.5) × a per-field scale; all weights are scaled so the margin's standard deviation is
 * `signal`, and the intercept is solved so the mean click probability is `positiveRate` (default
 * 0.15: inside the 10–25 % of down-sampled ad logs, far enough from 0.5 that the data is skewed).
 * label ~ Bernoulli(σ(margin)). The planted model's held-out log-loss (the Bayes floor no learner
 * can beat in expectation) is returned in `planted`.
 *
 * The first `heldout` examples are the held-out set, the rest are cut into contiguous shards
 * (examples are i.i.d., so any split is a fair one). Deterministic (same options → same bytes),
 * typed arrays throughout, cached on disk like the spam data (data-cache.ts).
 */
import { softplus } from '../../apps/logreg/eval.ts';
import { encodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { murmur3Block, murmur3Fmix } from '../../shared/hash.ts';
import { createRng } from '../../shared/rng.ts';
import { createZipf } from '../../shared/zipf.ts';
import { buildCsrShard, type CsrRows, SCRATCH_FREE } from './csr-rows.ts';
import { type PreparedData, prepareCached } from './data-cache.ts';

/** Bump when generation or the cache layout changes: old cache files stop matching. */
const CTR_PREP_VERSION = 1;
export const CTR_GENERATOR = 'synthetic-ctr';

export interface CtrDataOptions {
  /** Seed of values, planted weights and labels (default 1). */
  seed?: number;
  /** Examples in all, held out included (default 2,000,000; at most 20M: ~0.6 KB of memory each while generating). */
  examples?: number;
  /** Held-out examples (default min(50,000, examples/10)). */
  heldout?: number;
  /** Training shards (default 16). */
  shards?: number;
  /** Key space 2^keyBits (default 24; 1..32). */
  keyBits?: number;
  /** Categorical fields (default 24). Vocabularies run geometrically from 3 to maxVocab. */
  fields?: number;
  /** Vocabulary of the largest field (default 4,000,000). */
  maxVocab?: number;
  /** Zipf exponent of every field's values (default 1.1). */
  zipf?: number;
  /** Field-pair crosses (fields 2c × 2c+1 for c < crosses; default 2). */
  crosses?: number;
  /** Mean click probability of the planted model (default 0.15). */
  positiveRate?: number;
  /** Standard deviation of the planted margin (default 1.5). */
  signal?: number;
  /** Cache folder (default `.cache/tabshard`); null disables the cache. */
  cacheDir?: string | null;
}

export type CtrDataConfig = Required<Omit<CtrDataOptions, 'cacheDir'>> & {
  generator: typeof CTR_GENERATOR;
  prep: number;
  values: 'binary';
};

/** Facts about the planted model and the drawn data. */
export interface CtrPlanted {
  /** Field vocabularies, field order. */
  vocab: number[];
  /** Intercept (on the bias key) and the scale applied to the raw planted weights. */
  intercept: number;
  scale: number;
  /** Positive fraction of the training and of the held-out set. */
  positiveRate: number;
  heldoutPositiveRate: number;
  /** Held-out log-loss and accuracy of the planted model: the floor a learner can reach. */
  bayesLogLoss: number;
  bayesAccuracy: number;
  /** Held-out log-loss of the best constant predictor (the held-out positive rate). */
  baseLogLoss: number;
}

export type CtrData = PreparedData<CtrDataConfig> & { planted: CtrPlanted };

function resolveConfig(o: CtrDataOptions): CtrDataConfig {
  const examples = o.examples ?? 2_000_000;
  const c: CtrDataConfig = {
    generator: CTR_GENERATOR,
    prep: CTR_PREP_VERSION,
    seed: o.seed ?? 1,
    examples,
    heldout: o.heldout ?? Math.min(50_000, Math.round(examples / 10)),
    shards: o.shards ?? 16,
    keyBits: o.keyBits ?? 24,
    fields: o.fields ?? 24,
    maxVocab: o.maxVocab ?? 4_000_000,
    zipf: o.zipf ?? 1.1,
    crosses: o.crosses ?? 2,
    positiveRate: o.positiveRate ?? 0.15,
    signal: o.signal ?? 1.5,
    values: 'binary',
  };
  const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `ctr data: ${why}`);
  const int = (x: number, lo: number, hi: number) => Number.isInteger(x) && x >= lo && x <= hi;
  if (!int(c.shards, 1, 4096)) throw bad('shards must be in [1, 4096]');
  if (!int(c.keyBits, 1, 32)) throw bad('keyBits must be in [1, 32]');
  if (!int(c.examples, 2, 20_000_000)) throw bad('examples must be in [2, 2e7]');
  if (!int(c.heldout, 1, c.examples - c.shards)) throw bad('heldout must leave at least one example per shard');
  if (!int(c.fields, 1, 200)) throw bad('fields must be in [1, 200]');
  if (!int(c.maxVocab, 3, 2 ** 31)) throw bad('maxVocab must be in [3, 2^31]');
  if (!int(c.crosses, 0, Math.floor(c.fields / 2))) throw bad('crosses must be in [0, fields/2]');
  if (!(c.zipf > 0 && c.zipf < 8)) throw bad('zipf must be in (0, 8)');
  if (!(c.positiveRate > 0.001 && c.positiveRate < 0.999)) throw bad('positiveRate must be in (0.001, 0.999)');
  if (!(c.signal >= 0 && c.signal <= 20)) throw bad('signal must be in [0, 20]');
  if (!Number.isInteger(c.seed)) throw bad('seed must be an integer');
  return c;
}

/** Vocabulary of each field: geometric from 3 to maxVocab. */
export function ctrVocab(fields: number, maxVocab: number): number[] {
  if (fields === 1) return [maxVocab];
  return Array.from({ length: fields }, (_, f) => Math.round(3 * (maxVocab / 3) ** (f / (fields - 1))));
}

/** Prepares (or loads from the cache) the synthetic click-through data set for `opts`. */
export async function prepareCtrData(opts: CtrDataOptions = {}): Promise<CtrData> {
  const config = resolveConfig(opts);
  const { info, ...data } = prepareCached({ prefix: 'ctr', magic: 'TSCTR001', config, cacheDir: opts.cacheDir }, () =>
    build(config),
  );
  return { ...data, planted: info as CtrPlanted };
}

/** The hash of a feature (slot, a, b): MurmurHash3 x86_32's block mix over three words, then fmix. */
function mix3(seed: number, x: number, y: number, z: number): number {
  return murmur3Fmix(murmur3Block(murmur3Block(murmur3Block(seed, x), y), z));
}

const KEY_SEED = 0x6b657973;
const WEIGHT_SEED = 0x77656967;
const BIAS_SLOT = 0xffff;

function build(c: CtrDataConfig): { shards: Uint8Array[]; heldout: Uint8Array; info: CtrPlanted } {
  const E = c.examples;
  const F = c.fields;
  const P = F + c.crosses + 1; // non-zeros per example before hash collisions merge
  const rng = createRng(c.seed);
  const vocab = ctrVocab(F, c.maxVocab);
  const draws = vocab.map((n) => createZipf(rng, n, c.zipf));
  const fieldRng = createRng(c.seed ^ WEIGHT_SEED);
  const slotScale = Float64Array.from({ length: F + c.crosses }, () => 0.25 + 1.5 * fieldRng.next());
  const keyOf = (h: number) => (c.keyBits >= 32 ? h : h % 2 ** c.keyBits);
  const seedK = (KEY_SEED ^ c.seed) | 0;
  const seedW = (WEIGHT_SEED ^ c.seed) | 0;
  // Raw planted weight of feature (slot, a, b) whose frequency rank is about `rank`.
  const weight = (slot: number, a: number, b: number, rank: number) => {
    const h = mix3(seedW, slot, a, b);
    if ((h >>> 16) / 65536 >= 0.5 / Math.sqrt(1 + rank / 100)) return 0;
    const u = (h & 0x7fff) / 32768;
    return (h & 0x8000 ? -1 : 1) * (0.5 + u) * slotScale[slot];
  };

  const rows: CsrRows = { keys: new Uint32Array(E * P), val: new Float32Array(E * P), rowPtr: new Uint32Array(E + 1) };
  const margin = new Float64Array(E);
  const ranks = new Uint32Array(F);
  const row = new Uint32Array(P);
  const biasKey = keyOf(mix3(seedK, BIAS_SLOT, 0, 0));
  let nnz = 0;
  for (let i = 0; i < E; i++) {
    let m = 0;
    for (let f = 0; f < F; f++) {
      const r = draws[f]();
      ranks[f] = r;
      row[f] = keyOf(mix3(seedK, f, r, 0));
      m += weight(f, r, 0, r);
    }
    for (let x = 0; x < c.crosses; x++) {
      const a = ranks[2 * x];
      const b = ranks[2 * x + 1];
      row[F + x] = keyOf(mix3(seedK, F + x, a, b));
      m += weight(F + x, a, b, a * b);
    }
    row[P - 1] = biasKey;
    margin[i] = m;
    nnz = appendRow(rows, nnz, row);
    rows.rowPtr[i + 1] = nnz;
  }

  // Scale the margins to `signal`, solve the intercept for `positiveRate`, draw the labels.
  let mean = 0;
  for (let i = 0; i < E; i++) mean += margin[i];
  mean /= E;
  let sq = 0;
  for (let i = 0; i < E; i++) sq += (margin[i] - mean) ** 2;
  const sd = Math.sqrt(sq / E);
  const scale = sd > 0 ? c.signal / sd : 0;
  for (let i = 0; i < E; i++) margin[i] *= scale;
  const intercept = solveIntercept(margin.subarray(0, Math.min(E, 65_536)), c.positiveRate);
  const labels = new Uint8Array(E);
  for (let i = 0; i < E; i++) {
    margin[i] += intercept;
    labels[i] = rng.next() < 1 / (1 + Math.exp(-margin[i])) ? 1 : 0;
  }

  const H = c.heldout;
  const T = E - H;
  // A dense key → index map up to 2^24 keys (64 MB); binary search in larger key spaces.
  const scratch = c.keyBits <= 24 ? new Uint32Array(2 ** c.keyBits).fill(SCRATCH_FREE) : undefined;
  const heldout = encodeShard(buildCsrShard(HELDOUT_INDEX, rows, labels, 0, H, scratch));
  const shards: Uint8Array[] = [];
  for (let s = 0; s < c.shards; s++) {
    const a = H + Math.floor((s * T) / c.shards);
    const b = H + Math.floor(((s + 1) * T) / c.shards);
    shards.push(encodeShard(buildCsrShard(s, rows, labels, a, b, scratch)));
  }
  const bayes = bayesOf(margin.subarray(0, H), labels.subarray(0, H));
  let trainPos = 0;
  for (let i = H; i < E; i++) trainPos += labels[i];
  const heldPos = bayes.positives / H;
  const base = heldPos > 0 && heldPos < 1 ? -(heldPos * Math.log(heldPos) + (1 - heldPos) * Math.log1p(-heldPos)) : 0;
  return {
    shards,
    heldout,
    info: {
      vocab,
      intercept,
      scale,
      positiveRate: trainPos / T,
      heldoutPositiveRate: heldPos,
      bayesLogLoss: bayes.logLoss,
      bayesAccuracy: bayes.accuracy,
      baseLogLoss: base,
    },
  };
}

/** Sorts `row` (a handful of keys), merges hash collisions by adding values, appends at `nnz`. */
function appendRow(rows: CsrRows, nnz: number, row: Uint32Array): number {
  for (let j = 1; j < row.length; j++) {
    const x = row[j];
    let i = j - 1;
    for (; i >= 0 && row[i] > x; i--) row[i + 1] = row[i];
    row[i + 1] = x;
  }
  for (let j = 0; j < row.length; j++) {
    if (j > 0 && row[j] === row[j - 1]) rows.val[nnz - 1] += 1;
    else {
      rows.keys[nnz] = row[j];
      rows.val[nnz++] = 1;
    }
  }
  return nnz;
}

/** The intercept b with mean σ(b + z) = rate (bisection; the mean is increasing in b). */
function solveIntercept(z: Float64Array, rate: number): number {
  let lo = -30;
  let hi = 30;
  for (let it = 0; it < 40; it++) {
    const b = (lo + hi) / 2;
    let p = 0;
    for (let i = 0; i < z.length; i++) p += 1 / (1 + Math.exp(-(b + z[i])));
    if (p / z.length < rate) lo = b;
    else hi = b;
  }
  return (lo + hi) / 2;
}

function bayesOf(z: Float64Array, y: Uint8Array): { logLoss: number; accuracy: number; positives: number } {
  let loss = 0;
  let correct = 0;
  let positives = 0;
  for (let i = 0; i < z.length; i++) {
    const zi = z[i];
    loss += softplus(zi) - y[i] * zi;
    if (zi > 0 === (y[i] === 1)) correct++;
    positives += y[i];
  }
  return { logLoss: loss / z.length, accuracy: correct / z.length, positives };
}
