/**
 * The SpamAssassin data set of the logistic-regression job: every e-mail hashed into a sparse row
 * over 2^keyBits keys, a seeded held-out split, the training set cut into shards (shard format of
 * shared/apps/shard.ts). Deterministic (same options → same bytes) and cached on disk, so only the
 * first start of a configuration pays for reading and hashing the corpus.
 */
import { hashFeatures, type SparseRow } from '../../shared/apps/features.ts';
import { buildShard, encodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { DEFAULT_CACHE_DIR, type PreparedData, prepareCached } from './data-cache.ts';
import { CORPUS, corpusDir, corpusVersion, emailTokens, readCorpus } from './spam-email.ts';

/** Bump when tokenisation, hashing or the cache layout changes: old cache files stop matching. */
const PREP_VERSION = 1;

export interface SpamDataOptions {
  /** Seed of the held-out split and of the shard assignment (default 1). */
  seed?: number;
  /** Training shards (default 16). */
  shards?: number;
  /** Key space 2^keyBits (default 20; 1..32). */
  keyBits?: number;
  /** murmur3 seed of the feature hashing (default 0). */
  hashSeed?: number;
  /** Fraction of e-mails held out for evaluation (default 0.2). */
  heldoutFraction?: number;
  /** Body characters read per e-mail (default 10,000). */
  maxChars?: number;
  /** Feature values before L2 normalisation (default 'logtf'). */
  values?: 'binary' | 'logtf';
  /** Cache folder (default `.cache/tabshard` under the working directory); null disables the cache. */
  cacheDir?: string | null;
}

export type SpamDataConfig = Required<Omit<SpamDataOptions, 'cacheDir'>> & { corpus: string; prep: number };

export type SpamData = PreparedData<SpamDataConfig>;

/** Where prepared data is cached by default (re-exported for existing callers). */
export { DEFAULT_CACHE_DIR };

function resolveConfig(o: SpamDataOptions, version: string): SpamDataConfig {
  const c: SpamDataConfig = {
    seed: o.seed ?? 1,
    shards: o.shards ?? 16,
    keyBits: o.keyBits ?? 20,
    hashSeed: o.hashSeed ?? 0,
    heldoutFraction: o.heldoutFraction ?? 0.2,
    maxChars: o.maxChars ?? 10_000,
    values: o.values ?? 'logtf',
    corpus: `${CORPUS}@${version}`,
    prep: PREP_VERSION,
  };
  const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', why);
  if (!Number.isInteger(c.shards) || c.shards < 1 || c.shards > 4096) throw bad('shards must be in [1, 4096]');
  if (!Number.isInteger(c.keyBits) || c.keyBits < 1 || c.keyBits > 32) throw bad('keyBits must be in [1, 32]');
  if (!(c.heldoutFraction > 0 && c.heldoutFraction < 1)) throw bad('heldoutFraction must be in (0, 1)');
  if (!Number.isInteger(c.maxChars) || c.maxChars < 1) throw bad('maxChars must be a positive integer');
  if (!Number.isInteger(c.seed) || !Number.isInteger(c.hashSeed)) throw bad('seeds must be integers');
  return c;
}

/** Prepares (or loads from the cache) the data set for `opts`. */
export async function prepareSpamData(opts: SpamDataOptions = {}): Promise<SpamData> {
  const dir = corpusDir();
  const config = resolveConfig(opts, corpusVersion(dir));
  const { info: _, ...data } = prepareCached(
    { prefix: 'spam', magic: 'TSSPAM01', config, cacheDir: opts.cacheDir },
    () => build(config, dir),
  );
  return data;
}

/**
 * Cuts `n` e-mails into a held-out set and `shards` training shards: a seeded Fisher-Yates order,
 * its first `heldoutFraction` held out, the rest dealt round-robin (so every shard sees the
 * classes in the corpus's proportion). `encode(emails, index)` encodes one part.
 */
export function dealShards(
  n: number,
  o: { seed: number; shards: number; heldoutFraction: number },
  encode: (emails: number[], index: number) => Uint8Array,
): { shards: Uint8Array[]; heldout: Uint8Array } {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = createRng(o.seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nHeld = Math.round(n * o.heldoutFraction);
  const train = order.slice(nHeld);
  return {
    shards: Array.from({ length: o.shards }, (_, s) =>
      encode(
        train.filter((_, k) => k % o.shards === s),
        s,
      ),
    ),
    heldout: encode(order.slice(0, nHeld), HELDOUT_INDEX),
  };
}

function build(c: SpamDataConfig, dir: string): { shards: Uint8Array[]; heldout: Uint8Array } {
  const emails = readCorpus(dir);
  const rows: SparseRow[] = emails.map((e) =>
    hashFeatures(emailTokens(e.text, c.maxChars), {
      keyBits: c.keyBits,
      hashSeed: c.hashSeed,
      values: c.values,
      bias: true,
    }),
  );
  return dealShards(emails.length, c, (idx, index) =>
    encodeShard(
      buildShard(
        index,
        idx.map((i) => rows[i]),
        idx.map((i) => (emails[i].spam ? 1 : 0)),
      ),
    ),
  );
}
