/**
 * The Count-Min sketch (Cormode and Muthukrishnan 2005; the paper's third workload, Li et al.
 * §5.3): `depth` rows of `width` counters. An item x with count c adds c to counter h_r(x) of
 * every row r; the estimate of x is the least of its `depth` counters. It never underestimates,
 * and with width = ⌈e/ε⌉ and depth = ⌈ln(1/δ)⌉ an estimate exceeds the true count by more than
 * ε·N (N: the sum of all counts) with probability at most δ.
 *
 * On the servers the sketch is one sum table of depth·width keys: row r's counter j is key
 * r·width + j. A task turns its shard's items into the cells it adds to (`shardCells`), and the
 * job side computes the same cells for the task's capability, so both call this file.
 *
 * h_r(x) = fmix32(x xor s_r) mod width, with per-row seeds s_r from the job's seed: MurmurHash3's
 * finaliser, a strong mixer but not a proven pairwise-independent family, so the (ε, δ) bound
 * is what the tests and the job's evaluation check, not what this file proves.
 * Pure; runs in Node and in the browser.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { murmur3Fmix } from '../../shared/hash.ts';
import { createRng } from '../../shared/rng.ts';

export interface SketchConfig {
  depth: number;
  width: number;
  /** Seed of the rows' hash seeds. */
  seed: number;
}

/** The sketch of an (ε, δ) guarantee: width ⌈e/ε⌉, depth ⌈ln(1/δ)⌉. */
export function sketchFor(epsilon: number, delta: number, seed: number): SketchConfig {
  if (!(epsilon > 0 && epsilon < 1) || !(delta > 0 && delta < 1))
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'cms: epsilon and delta must be in (0, 1)');
  return checkSketch({ depth: Math.ceil(Math.log(1 / delta)), width: Math.ceil(Math.E / epsilon), seed });
}

/** The guarantee of a sketch's shape: ε = e/width, δ = e^−depth. */
export function guarantee(cfg: SketchConfig): { epsilon: number; delta: number } {
  return { epsilon: Math.E / cfg.width, delta: Math.exp(-cfg.depth) };
}

/** Refuses a shape outside depth 1..16, width 1..2^24 (TS_ERR_INVALID_ARGUMENT); returns it. */
export function checkSketch(cfg: SketchConfig): SketchConfig {
  const int = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!int(cfg.depth, 1, 16) || !int(cfg.width, 1, 2 ** 24) || !int(cfg.seed, 0, 2 ** 32 - 1))
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      `cms: depth must be in [1, 16], width in [1, 2^24], seed a 32-bit integer (got ${JSON.stringify(cfg)})`,
    );
  return cfg;
}

/** The rows' hash seeds. */
export function rowSeeds(cfg: SketchConfig): Uint32Array {
  const rng = createRng(cfg.seed);
  return Uint32Array.from({ length: cfg.depth }, () => rng.int(2 ** 32));
}

/** The key (in the sketch's table) of item `x`'s counter in row `r`. */
export function cellOf(cfg: SketchConfig, seeds: Uint32Array, r: number, x: number): number {
  return r * cfg.width + (murmur3Fmix((x ^ seeds[r]) | 0) % cfg.width);
}

/** A shard's additions to the sketch: the cells it touches (sorted, unique) and what it adds to each. */
export interface ShardCells {
  cells: Float64Array;
  counts: Float32Array;
  /** Items counted (the sum of the shard's counts). */
  inserts: number;
}

const cached = new WeakMap<DecodedShard, { key: string; cells: ShardCells }>();

/**
 * The shard's items are its keys, their counts its values (row i: one document's items). Every
 * occurrence adds to one counter per row; the result is cached per decoded shard and shape.
 */
export function shardCells(cfg: SketchConfig, shard: DecodedShard): ShardCells {
  const key = `${cfg.depth}x${cfg.width}@${cfg.seed}`;
  const hit = cached.get(shard);
  if (hit?.key === key) return hit.cells;
  const seeds = rowSeeds(cfg);
  const K = shard.keys.length;
  const perKey = new Float64Array(K);
  for (let i = 0; i < shard.col.length; i++) perKey[shard.col[i]] += shard.val[i];
  const sums = new Map<number, number>();
  let inserts = 0;
  for (let k = 0; k < K; k++) {
    const c = perKey[k];
    if (c === 0) continue;
    inserts += c;
    for (let r = 0; r < cfg.depth; r++) {
      const cell = cellOf(cfg, seeds, r, shard.keys[k]);
      sums.set(cell, (sums.get(cell) ?? 0) + c);
    }
  }
  const cells = Float64Array.from(sums.keys()).sort();
  const counts = Float32Array.from(cells, (c) => sums.get(c)!);
  const out = { cells, counts, inserts };
  cached.set(shard, { key, cells: out });
  return out;
}

/** The estimate of item `x`: the least of its counters, read with `counter(key)`. */
export function estimate(cfg: SketchConfig, seeds: Uint32Array, x: number, counter: (key: number) => number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < cfg.depth; r++) min = Math.min(min, counter(cellOf(cfg, seeds, r, x)));
  return min;
}
