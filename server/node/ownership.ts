/**
 * Whether a server node owns the keys of a request under its installed ring (PROTOCOL.md §5):
 * every key a frame carries must fall in one of the node's ranges, else TS_ERR_NOT_OWNER (the
 * worker then re-slices under a newer ring). A node the ring does not name owns nothing.
 */
import { TabshardError } from '../../shared/errors.ts';
import { checkKey, checkRange } from '../../shared/keys.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import type { Ring, TableShape } from '../../shared/ring.ts';
import type { Table } from './table.ts';

/** Per table: whether the node owns all of it under `ring` (decided once per ring). */
export type OwnsAllCache = WeakMap<Table, { ring: Ring; all: boolean }>;

export function checkOwner(cache: OwnsAllCache, self: string, ring: Ring, t: Table, keys: KvKeys): void {
  const shape: TableShape = { id: t.spec.id, keySpace: t.spec.keySpace, valueLength: t.spec.valueLength };
  // Common case: the node owns the whole table (one node, or a small table); decided once per ring.
  let owns = cache.get(t);
  if (owns === undefined || owns.ring !== ring) {
    owns = { ring, all: ring.ranges(shape).every((r) => r.owner === self) };
    cache.set(t, owns);
  }
  if (owns.all) {
    // The same key checks (and codes) as slicing would make.
    if (keys.kind === 'range') checkRange(keys.begin, keys.end, shape.keySpace);
    else if (keys.kind === 'ranges') {
      const b = keys.bounds;
      if (b.length > 0) checkRange(b[0], b[b.length - 1], shape.keySpace);
    } else if (keys.keys.length > 0) {
      checkKey(keys.keys[0], shape.keySpace);
      checkKey(keys.keys[keys.keys.length - 1], shape.keySpace);
    }
    return;
  }
  // A frame carries all of this node's keys of a request, across as many of its ranges as they
  // fall in: every piece must be this node's.
  const notOwner = (owner: string): void => {
    if (owner !== self) throw new TabshardError('TS_ERR_NOT_OWNER', `${self} is not the owner (ring v${ring.version})`);
  };
  if (keys.kind === 'list') for (const s of ring.sliceKeys(shape, keys.keys)) notOwner(s.owner);
  else if (keys.kind === 'range') for (const r of ring.sliceRange(shape, keys.begin, keys.end)) notOwner(r.owner);
  else
    for (let i = 0; i < keys.bounds.length; i += 2)
      for (const r of ring.sliceRange(shape, keys.bounds[i], keys.bounds[i + 1])) notOwner(r.owner);
}
