/**
 * The rows a range copy sends (PROTOCOL.md §5.3 MIGRATE): what a node holds of the pieces it
 * copies to one member, in key order, with a sparse table's stored keys of consecutive pieces
 * gathered into chunks of up to EXPORT_KEYS keys. With 512 virtual nodes a node gains ~1000
 * small pieces in a join; a frame per piece, each written into the receiver's store on its own,
 * made a join slow.
 */
import { EXPORT_KEYS, type RowChunk } from './rows.ts';
import type { Table } from './table.ts';

/**
 * What `t` holds of `pieces` as row chunks in key order: dense pages as they are (a range each),
 * sparse key lists of consecutive pieces joined into chunks of up to EXPORT_KEYS keys.
 */
export function* gatherChunks(t: Table, pieces: ReadonlyArray<readonly [number, number]>): Iterable<RowChunk> {
  const slots = 1 + t.stateSlots;
  const d = t.spec.valueLength;
  let held: RowChunk[] = [];
  let n = 0;
  const flush = (): RowChunk => {
    if (held.length === 1) {
      const one = held[0];
      held = [];
      n = 0;
      return one;
    }
    const keys = new Float64Array(n);
    const rows = new Float32Array(n * d * slots);
    let at = 0;
    for (const c of held) {
      const m = (c.keys as { keys: Float64Array }).keys.length;
      keys.set((c.keys as { keys: Float64Array }).keys, at);
      for (let s = 0; s < slots; s++) rows.set(c.rows.subarray(s * m * d, (s + 1) * m * d), s * n * d + at * d);
      at += m;
    }
    held = [];
    n = 0;
    return { keys: { kind: 'list', keys }, rows };
  };
  for (const [b, e] of pieces)
    for (const c of t.exportRange(b, e)) {
      if (c.keys.kind !== 'list') {
        if (n > 0) yield flush();
        yield c;
        continue;
      }
      if (n > 0 && n + c.keys.keys.length > EXPORT_KEYS) yield flush();
      held.push(c);
      n += c.keys.keys.length;
    }
  if (n > 0) yield flush();
}
