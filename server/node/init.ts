/**
 * Table initialisers. An initial value is a pure function of (seed, key, j), so a key that was
 * never pushed pulls the same value on every node and every time, and stores need not keep it.
 */
import type { Initializer } from '../../shared/table.ts';

const TWO32 = 4294967296;

/** A 32-bit mix of (seed, key, j, salt) → [0, 1). */
function unit(seed: number, key: number, j: number, salt: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ (key % TWO32);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ Math.floor(key / TWO32);
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ j;
  h = Math.imul(h ^ (h >>> 16), 0x165667b1) ^ salt;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return ((h ^ (h >>> 16)) >>> 0) / TWO32;
}

/** True when every initial value is 0 (fresh Float32Arrays need no filling). */
export function isZeroInit(init: Initializer): boolean {
  return init.kind === 'zeros' || (init.kind === 'constant' && init.value === 0);
}

/**
 * Writes initial values for `count` keys × `d` values into `out` starting at `out[at]`, for
 * the keys `keyAt(i)`, i = 0..count-1.
 */
export function fillInit(
  init: Initializer,
  out: Float32Array,
  at: number,
  count: number,
  d: number,
  keyAt: (i: number) => number,
): void {
  if (init.kind === 'zeros') {
    out.fill(0, at, at + count * d);
    return;
  }
  if (init.kind === 'constant') {
    out.fill(init.value, at, at + count * d);
    return;
  }
  for (let i = 0, o = at; i < count; i++) {
    const k = keyAt(i);
    for (let j = 0; j < d; j++, o++) out[o] = initValue(init, k, j);
  }
}

/**
 * Writes the initial values of flat offsets [flat, flat + len) of a table with `d` values per key
 * (offset f is element f % d of key floor(f / d)) into `out` starting at `out[at]`; the range
 * need not start or end on a key boundary (a dense page boundary may fall inside a key).
 */
export function fillInitFlat(
  init: Initializer,
  out: Float32Array,
  at: number,
  flat: number,
  len: number,
  d: number,
): void {
  if (init.kind === 'zeros' || init.kind === 'constant') {
    out.fill(init.kind === 'zeros' ? 0 : init.value, at, at + len);
    return;
  }
  for (let i = 0, f = flat; i < len; i++, f++) out[at + i] = initValue(init, Math.floor(f / d), f % d);
}

/** The initial value of element `j` of `key`. */
export function initValue(init: Initializer, key: number, j: number): number {
  switch (init.kind) {
    case 'zeros':
      return 0;
    case 'constant':
      return init.value;
    case 'uniform':
      return (2 * unit(init.seed, key, j, 0) - 1) * init.scale;
    case 'normal': {
      // Box–Muller from two independent uniforms.
      const u1 = Math.max(unit(init.seed, key, j, 1), 1e-12);
      return init.std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * unit(init.seed, key, j, 2));
    }
  }
}
