/**
 * Prepares a data set of the logistic-regression job into the disk cache and prints one JSON line
 * per preparation: the first as found (cold unless cached), the second from the cache.
 *
 *   node --import tsx scripts/prepare-data.ts [--data spam|ctr] [--shards 16] [--key-bits 20|24]
 *        [--seed 1] [--examples 2000000 (ctr)] [--cache-dir .cache/tabshard] [--fresh]
 * --data spam (default): the SpamAssassin corpus; ctr: the synthetic click-through data
 * (server/data/ctr-data.ts, key bits default 24). --fresh deletes this configuration's cache file
 * first, so the first line measures a cold start.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { prepareCtrData } from '../server/data/ctr-data.ts';
import { DEFAULT_CACHE_DIR } from '../server/data/data-cache.ts';
import { prepareSpamData } from '../server/data/spam-data.ts';
import { decodeShard } from '../shared/apps/shard.ts';

const { values } = parseArgs({
  options: {
    shards: { type: 'string' },
    'key-bits': { type: 'string' },
    seed: { type: 'string' },
    'cache-dir': { type: 'string' },
    data: { type: 'string', default: 'spam' },
    examples: { type: 'string' },
    fresh: { type: 'boolean' },
  },
});
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const opts = {
  shards: num(values.shards),
  keyBits: num(values['key-bits']),
  seed: num(values.seed),
  cacheDir: values['cache-dir'] ?? DEFAULT_CACHE_DIR,
};
if (values.data !== 'spam' && values.data !== 'ctr') throw new Error(`--data must be spam or ctr, not ${values.data}`);
const prepare = () =>
  values.data === 'ctr' ? prepareCtrData({ ...opts, examples: num(values.examples) }) : prepareSpamData(opts);

for (let run = 0; run < 2; run++) {
  if (run === 0 && values.fresh) {
    const probe = await prepare();
    if (probe.cacheFile) rmSync(probe.cacheFile, { force: true });
  }
  const d = await prepare();
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
        ...('planted' in d ? { planted: d.planted } : {}),
      },
      (k, v) => (k === 'features' ? (v as Set<number>).size : v),
    ),
  );
}
