/**
 * Prepares the SpamAssassin data set of the logistic-regression job into the disk cache and prints
 * one JSON line per preparation: the first as found (cold unless cached), the second from the cache.
 *
 *   node --import tsx scripts/prepare-data.ts [--shards 16] [--key-bits 20] [--seed 1]
 *                                              [--cache-dir .cache/tabshard] [--fresh]
 * --fresh deletes this configuration's cache file first, so the first line measures a cold start.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CACHE_DIR, prepareSpamData, type SpamDataOptions } from '../server/jobs/spam-data.ts';
import { decodeShard } from '../shared/apps/shard.ts';

const { values } = parseArgs({
  options: {
    shards: { type: 'string' },
    'key-bits': { type: 'string' },
    seed: { type: 'string' },
    'cache-dir': { type: 'string' },
    fresh: { type: 'boolean' },
  },
});
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const opts: SpamDataOptions = {
  shards: num(values.shards),
  keyBits: num(values['key-bits']),
  seed: num(values.seed),
  cacheDir: values['cache-dir'] ?? DEFAULT_CACHE_DIR,
};

for (let run = 0; run < 2; run++) {
  if (run === 0 && values.fresh) {
    const probe = await prepareSpamData(opts);
    if (probe.cacheFile) rmSync(probe.cacheFile, { force: true });
  }
  const d = await prepareSpamData(opts);
  const held = decodeShard(d.heldout);
  const shards = d.shards.map(decodeShard);
  const features = new Set<number>(held.keys);
  for (const s of shards) for (const k of s.keys) features.add(k);
  const sizes = d.shards.map((b) => b.byteLength);
  console.log(
    JSON.stringify(
      {
        cached: d.cached,
        ms: Math.round(d.ms),
        version: d.version,
        cacheFile: d.cacheFile,
        examples: held.labels.length + shards.reduce((n, s) => n + s.labels.length, 0),
        heldout: held.labels.length,
        shards: shards.length,
        features,
        nonZeros: held.col.length + shards.reduce((n, s) => n + s.col.length, 0),
        shardKeys: {
          min: Math.min(...shards.map((s) => s.keys.length)),
          max: Math.max(...shards.map((s) => s.keys.length)),
        },
        shardBytes: { min: Math.min(...sizes), max: Math.max(...sizes), total: sizes.reduce((a, b) => a + b, 0) },
        heldoutBytes: d.heldout.byteLength,
        config: d.config,
      },
      (k, v) => (k === 'features' ? (v as Set<number>).size : v),
    ),
  );
}
