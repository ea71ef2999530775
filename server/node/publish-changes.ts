/**
 * Publications of what changed (PROTOCOL.md §5.1, flag CHANGED): the positions, in a
 * subscription's key order, whose values differ from the subscription's previous publication.
 * A table whose updater leaves most values as they are (FTRL's zero weights under L1, keys no
 * task pushed since the last clock) then publishes a fraction of its keys at each clock.
 */

/** Subscribed values a node keeps, summed over its subscriptions, to publish changes (64 MiB). */
export const CHANGES_BUDGET_FLOATS = 1 << 24;

/** Bytes a listed position may cost on the wire (a DELTA32 key list; LIST64 is rarer). */
const POSITION_BYTES = 4;

/**
 * The positions whose `d` values differ between `last` and `now` (both n·d floats, as the
 * subscriber decodes them), or null when sending them with their positions would not be at least
 * a quarter smaller than a full publication of `valueBytes` bytes per value.
 */
export function changedPositions(
  last: Float32Array,
  now: Float32Array,
  d: number,
  valueBytes: number,
): Float64Array | null {
  const n = now.length / d;
  const limit = Math.floor((0.75 * n * d * valueBytes) / (POSITION_BYTES + d * valueBytes));
  const out = new Float64Array(Math.max(0, limit));
  let m = 0;
  for (let i = 0; i < n; i++) {
    let same = true;
    for (let j = i * d, e = j + d; j < e; j++)
      if (now[j] !== last[j]) {
        same = false;
        break;
      }
    if (same) continue;
    if (m === limit) return null;
    out[m++] = i;
  }
  return out.subarray(0, m);
}

/** The `d` values at `positions` of `values`, in order. */
export function valuesAt(values: Float32Array, positions: Float64Array, d: number): Float32Array {
  const out = new Float32Array(positions.length * d);
  if (d === 1) for (let i = 0; i < positions.length; i++) out[i] = values[positions[i]];
  else
    for (let i = 0; i < positions.length; i++) out.set(values.subarray(positions[i] * d, positions[i] * d + d), i * d);
  return out;
}
