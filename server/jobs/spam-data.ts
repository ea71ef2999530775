/**
 * The SpamAssassin data set of the logistic-regression job: every e-mail hashed into a sparse row
 * over 2^keyBits keys, a seeded held-out split, the training set cut into shards (shard format of
 * shared/apps/shard.ts). Deterministic (same options → same bytes) and cached on disk, so only the
 * first start of a configuration pays for reading and hashing the corpus.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFeatures, type SparseRow } from '../../shared/apps/features.ts';
import { buildShard, encodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
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

export interface SpamData {
  config: SpamDataConfig;
  /** Encoded training shards, shard i at index i. */
  shards: Uint8Array[];
  /** The encoded held-out set (index HELDOUT_INDEX). */
  heldout: Uint8Array;
  /** Content hash of config and bytes (hex, 16 chars): the data version for caches and ETags. */
  version: string;
  /** True when read from the cache file. */
  cached: boolean;
  /** Milliseconds this call took. */
  ms: number;
  /** Cache file path, or null. */
  cacheFile: string | null;
}

export const DEFAULT_CACHE_DIR = join('.cache', 'tabshard');

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
  const t0 = performance.now();
  const dir = corpusDir();
  const config = resolveConfig(opts, corpusVersion(dir));
  const key = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
  const cacheDir = opts.cacheDir === undefined ? DEFAULT_CACHE_DIR : opts.cacheDir;
  const cacheFile = cacheDir === null ? null : join(cacheDir, `spam-${key}.bin`);
  if (cacheFile !== null) {
    const hit = readCache(cacheFile, config);
    if (hit) return { config, ...hit, cached: true, ms: performance.now() - t0, cacheFile };
  }
  const { shards, heldout } = build(config, dir);
  const version = contentVersion(config, [heldout, ...shards]);
  if (cacheFile !== null) writeCache(cacheFile, config, version, [heldout, ...shards]);
  return { config, shards, heldout, version, cached: false, ms: performance.now() - t0, cacheFile };
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
  // Seeded Fisher-Yates over the corpus order, then: the first part held out, the rest dealt
  // round-robin to the shards (so every shard sees both classes in the corpus's proportion).
  const order = Array.from(emails, (_, i) => i);
  const rng = createRng(c.seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nHeld = Math.round(order.length * c.heldoutFraction);
  const pick = (idx: number[], index: number) =>
    encodeShard(
      buildShard(
        index,
        idx.map((i) => rows[i]),
        idx.map((i) => (emails[i].spam ? 1 : 0)),
      ),
    );
  const heldout = pick(order.slice(0, nHeld), HELDOUT_INDEX);
  const train = order.slice(nHeld);
  const shards: Uint8Array[] = [];
  for (let s = 0; s < c.shards; s++)
    shards.push(
      pick(
        train.filter((_, k) => k % c.shards === s),
        s,
      ),
    );
  return { shards, heldout };
}

function contentVersion(c: SpamDataConfig, parts: Uint8Array[]): string {
  const h = createHash('sha256').update(JSON.stringify(c));
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

// Cache file: "TSSPAM01", u32 JSON length, JSON {config, version, sizes}, zero padding to 8, then
// the held-out set and the shards, each padded to 8 bytes (so decodes alias without copying).
const MAGIC = 'TSSPAM01';
const pad8 = (n: number) => (n + 7) & ~7;

function writeCache(file: string, config: SpamDataConfig, version: string, parts: Uint8Array[]): void {
  const json = Buffer.from(JSON.stringify({ config, version, sizes: parts.map((p) => p.byteLength) }));
  let total = pad8(12 + json.byteLength);
  for (const p of parts) total += pad8(p.byteLength);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.byteLength, 8);
  json.copy(out, 12);
  let off = pad8(12 + json.byteLength);
  for (const p of parts) {
    out.set(p, off);
    off += pad8(p.byteLength);
  }
  mkdirSync(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, out);
  renameSync(tmp, file); // atomic: a concurrent reader sees the old file or the whole new one
}

function readCache(
  file: string,
  config: SpamDataConfig,
): { shards: Uint8Array[]; heldout: Uint8Array; version: string } | null {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  try {
    if (buf.toString('latin1', 0, 8) !== MAGIC) return null;
    const len = buf.readUInt32LE(8);
    const meta = JSON.parse(buf.toString('utf8', 12, 12 + len)) as {
      config: SpamDataConfig;
      version: string;
      sizes: number[];
    };
    if (JSON.stringify(meta.config) !== JSON.stringify(config) || meta.sizes.length !== config.shards + 1) return null;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    let off = pad8(12 + len);
    const parts = meta.sizes.map((n) => {
      const p = bytes.subarray(off, off + n);
      off += pad8(n);
      return p;
    });
    if (off !== buf.byteLength) return null;
    return { heldout: parts[0], shards: parts.slice(1), version: meta.version };
  } catch {
    return null; // a damaged cache file is rebuilt
  }
}
