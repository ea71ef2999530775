/**
 * Seeded pseudo-random numbers (mulberry32): the one random source of tests, benchmarks and
 * the simulated network, so every run with the same seed behaves the same.
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

/** `n` distinct integer keys drawn uniformly from [0, max), sorted ascending (max <= 2^52). */
export function randomSortedKeys(rng: Rng, n: number, max: number): Float64Array {
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = Math.floor(rng.next() * max);
  keys.sort();
  let w = 0;
  for (let i = 0; i < n; i++) if (w === 0 || keys[i] !== keys[w - 1]) keys[w++] = keys[i];
  if (w === n) return keys;
  // Rare collisions: top up with fresh keys until unique.
  const set = new Set<number>(keys.subarray(0, w));
  while (set.size < n) set.add(Math.floor(rng.next() * max));
  return Float64Array.from(set).sort();
}
