/**
 * The disk cache of prepared job data (spam-data.ts, ctr-data.ts): one file per configuration,
 * named by a hash of the configuration, holding the encoded held-out set and shards, the content
 * version and optional derived facts (`info`). Written atomically (temp file + rename), read back
 * without copying; a missing, damaged or mismatching file is a miss and the data is rebuilt.
 *
 * File: 8-byte magic, u32 JSON length, JSON {config, version, sizes[, info]}, zero padding to 8,
 * then the held-out set and the shards, each padded to 8 bytes (so decodes alias without copying).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_CACHE_DIR = join('.cache', 'tabshard');

/** A prepared data set: what prepareSpamData and prepareCtrData return. */
export interface PreparedData<C> {
  config: C;
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

/** What a builder produces: the parts and any derived facts to keep beside them. */
export interface BuiltData<I> {
  shards: Uint8Array[];
  heldout: Uint8Array;
  info?: I;
}

export interface CacheSpec<C extends { shards: number }> {
  /** File name prefix, e.g. 'spam' → `spam-<hash>.bin`. */
  prefix: string;
  /** 8 latin1 characters at the start of the file. */
  magic: string;
  config: C;
  /** Folder (default DEFAULT_CACHE_DIR); null disables the cache. */
  cacheDir?: string | null;
}

/**
 * Returns the data of `spec.config` from the cache, or builds it with `build` and writes it to the
 * cache. `info` is whatever the builder derived (kept in the file's JSON, returned on a hit too).
 */
export function prepareCached<C extends { shards: number }, I = undefined>(
  spec: CacheSpec<C>,
  build: () => BuiltData<I>,
): PreparedData<C> & { info: I | undefined } {
  const t0 = performance.now();
  const { config } = spec;
  const key = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
  const dir = spec.cacheDir === undefined ? DEFAULT_CACHE_DIR : spec.cacheDir;
  const cacheFile = dir === null ? null : join(dir, `${spec.prefix}-${key}.bin`);
  if (cacheFile !== null) {
    const hit = readCache<I>(cacheFile, spec.magic, config);
    if (hit) return { config, ...hit, cached: true, ms: performance.now() - t0, cacheFile };
  }
  const { shards, heldout, info } = build();
  const version = contentVersion(config, [heldout, ...shards]);
  if (cacheFile !== null) writeCache(cacheFile, spec.magic, { config, version, info }, [heldout, ...shards]);
  return { config, shards, heldout, version, info, cached: false, ms: performance.now() - t0, cacheFile };
}

function contentVersion(config: unknown, parts: Uint8Array[]): string {
  const h = createHash('sha256').update(JSON.stringify(config));
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

const pad8 = (n: number) => (n + 7) & ~7;

function writeCache(
  file: string,
  magic: string,
  head: { config: unknown; version: string; info: unknown },
  parts: Uint8Array[],
): void {
  const { config, version, info } = head;
  const sizes = parts.map((p) => p.byteLength);
  // `info` only when present, so files without it keep their exact bytes.
  const json = Buffer.from(
    JSON.stringify(info === undefined ? { config, version, sizes } : { config, version, sizes, info }),
  );
  let total = pad8(12 + json.byteLength);
  for (const p of parts) total += pad8(p.byteLength);
  const out = Buffer.alloc(total);
  out.write(magic, 0, 'latin1');
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

function readCache<I>(
  file: string,
  magic: string,
  config: { shards: number },
): { shards: Uint8Array[]; heldout: Uint8Array; version: string; info: I | undefined } | null {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  try {
    if (buf.toString('latin1', 0, 8) !== magic) return null;
    const len = buf.readUInt32LE(8);
    const meta = JSON.parse(buf.toString('utf8', 12, 12 + len)) as {
      config: unknown;
      version: string;
      sizes: number[];
      info?: I;
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
    return { heldout: parts[0], shards: parts.slice(1), version: meta.version, info: meta.info };
  } catch {
    return null; // a damaged cache file is rebuilt
  }
}
