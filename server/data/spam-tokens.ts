/**
 * The SpamAssassin corpus as a stream of tokens (the Count-Min sketch's data, apps/cms/): every
 * e-mail's tokens (spam-email.ts, as the text applications read them) hashed to 32-bit item ids,
 * one row per e-mail holding each item's count, the e-mails dealt round-robin to the shards in a
 * seeded order after the held-out part (none by default: a sketch is checked against the exact
 * counts; LDA holds documents out). Deterministic and cached on disk, as spam-data.ts.
 */
import { hashKey } from '../../shared/apps/features.ts';
import { buildShard, encodeShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { type PreparedData, prepareCached } from './data-cache.ts';
import { dealShards } from './spam-data.ts';
import { CORPUS, corpusDir, corpusVersion, emailTokens, readCorpus } from './spam-email.ts';

/** Bump when tokenisation, hashing or the cache layout changes. */
const PREP_VERSION = 1;

export interface SpamTokensOptions {
  /** Seed of the shard assignment (default 1). */
  seed?: number;
  /** Shards (default 16). */
  shards?: number;
  /** murmur3 seed of the item ids (default 0). */
  hashSeed?: number;
  /** Body characters read per e-mail (default 10,000). */
  maxChars?: number;
  /** Fraction of e-mails held out, the first of the seeded order (default 0). */
  heldoutFraction?: number;
  /** Keep each item's token (`words`, kept in the cache file too; default false). */
  words?: boolean;
  /** Cache folder (default `.cache/tabshard`); null disables the cache. */
  cacheDir?: string | null;
}

export type SpamTokensConfig = Required<Omit<SpamTokensOptions, 'cacheDir'>> & { corpus: string; prep: number };

/** The item id of a token (what a query hashes a word to). */
export function itemId(token: string, hashSeed: number): number {
  return hashKey(token, 32, hashSeed);
}

/** Prepares (or loads from the cache) the token stream for `opts`; with `words`, each item's token. */
export function prepareSpamTokens(
  opts: SpamTokensOptions = {},
): PreparedData<SpamTokensConfig> & { words?: Map<number, string> } {
  const dir = corpusDir();
  const c: SpamTokensConfig = {
    seed: opts.seed ?? 1,
    shards: opts.shards ?? 16,
    hashSeed: opts.hashSeed ?? 0,
    maxChars: opts.maxChars ?? 10_000,
    heldoutFraction: opts.heldoutFraction ?? 0,
    words: opts.words ?? false,
    corpus: `${CORPUS}@${corpusVersion(dir)}`,
    prep: PREP_VERSION,
  };
  if (!Number.isInteger(c.shards) || c.shards < 1 || c.shards > 4096)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'shards must be in [1, 4096]');
  if (!(c.heldoutFraction >= 0 && c.heldoutFraction < 1) || !Number.isInteger(c.maxChars) || c.maxChars < 1)
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      'heldoutFraction must be in [0, 1), maxChars a positive integer',
    );
  const { info, ...data } = prepareCached<SpamTokensConfig, { words: Array<[number, string]> }>(
    { prefix: 'tokens', magic: 'TSTOKS01', config: c, cacheDir: opts.cacheDir },
    () => {
      const emails = readCorpus(dir);
      const words = new Map<number, string>();
      const rows = emails.map((e) => {
        const counts = new Map<number, number>();
        for (const t of emailTokens(e.text, c.maxChars)) {
          const x = itemId(t, c.hashSeed);
          counts.set(x, (counts.get(x) ?? 0) + 1);
          if (c.words) words.set(x, t);
        }
        const keys = Float64Array.from(counts.keys()).sort();
        return { keys, values: Float32Array.from(keys, (k) => counts.get(k)!) };
      });
      const parts = dealShards(emails.length, c, (idx, index) =>
        encodeShard(
          buildShard(
            index,
            idx.map((i) => rows[i]),
            new Uint8Array(idx.length),
          ),
        ),
      );
      return { ...parts, info: c.words ? { words: [...words] } : undefined };
    },
  );
  return info ? { ...data, words: new Map(info.words) } : data;
}
