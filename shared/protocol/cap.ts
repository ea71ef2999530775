/**
 * Capabilities on the data plane (PROTOCOL.md §6.2): CAP, a worker presenting a capability the
 * scheduler signed to a server node once per connection, and KEYSET, the manager installing a
 * named key set (a shard's working set, say) that task capabilities may point at. The signature
 * itself is checked by the node (server/auth/capability.ts); here only the frames' shapes.
 */
import { TabshardError } from '../errors.ts';
import { checkSortedKeys, MAX_KEY_SPACE } from '../keys.ts';
import { decodeObject, encodeJson } from './control.ts';
import { emptyFrame, encodeFrame, Flag, type Frame, type KeySegment, MsgType } from './frame.ts';
import type { KvKeys } from './kv.ts';

/** Longest capability a CAP may carry (server/auth/capability.ts MAX_CAPABILITY_CHARS). */
export const MAX_CAP_CHARS = 2048;

const shape = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

/** CAP (worker → node): control frame, header `job`, body `{"cap":token}`; reply ACK. */
export function encodeCap(requestId: number, job: number, token: string): Uint8Array[] {
  return encodeJson(MsgType.CAP, requestId, { cap: token }, job);
}

/** The token of a CAP; TS_ERR_FRAME_MALFORMED unless the body is an object with a string `cap` ≤ 2048 chars. */
export function parseCap(f: Frame): string {
  const cap = decodeObject(f).cap;
  if (typeof cap !== 'string' || cap.length > MAX_CAP_CHARS)
    throw shape(`cap must be a string of at most ${MAX_CAP_CHARS} characters`);
  return cap;
}

export interface KeySetMsg {
  requestId: number;
  job: number;
  table: number;
  /** The key set's id (u32), which task capabilities name in a table grant's `keys`. */
  id: number;
  /** A list, a range or ranges; a decoded list may alias the receiver's scratch (copy it to keep it). */
  keys: KvKeys;
}

/**
 * KEYSET (manager → node, admin): a kv-family frame, header `job` and `table`, keys a list
 * (LIST64/DELTA32) or RANGE/RANGES, value BYTES of exactly 4 bytes = the set id (u32 LE), no
 * task block; reply ACK. `keys`: a sorted unique key list, or ranges in order (one → RANGE).
 */
export function encodeKeySet(
  requestId: number,
  job: number,
  table: number,
  setId: number,
  keys: Float64Array | ReadonlyArray<{ begin: number; end: number }>,
): Uint8Array[] {
  if (!Number.isInteger(setId) || setId < 0 || setId > 0xffffffff)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'a key set id is a u32');
  let segment: KeySegment;
  if (keys instanceof Float64Array) {
    checkSortedKeys(keys, MAX_KEY_SPACE);
    segment = { kind: 'list', keys };
  } else {
    let prevEnd = 0;
    for (const r of keys) {
      if (!Number.isInteger(r.begin) || !Number.isInteger(r.end) || r.begin < prevEnd || r.begin >= r.end)
        throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'key set ranges are non-empty, in order, not overlapping');
      if (r.end > MAX_KEY_SPACE) throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', 'keys must be below 2^52');
      prevEnd = r.end;
    }
    segment =
      keys.length === 1
        ? { kind: 'range', begin: keys[0].begin, end: keys[0].end }
        : { kind: 'ranges', bounds: Float64Array.from(keys.flatMap((r) => [r.begin, r.end])) };
  }
  const body = new Uint8Array(4);
  new DataView(body.buffer).setUint32(0, setId, true);
  return encodeFrame({ ...emptyFrame(MsgType.KEYSET, requestId), job, table, keys: segment, body });
}

/** A decoded KEYSET; TS_ERR_FRAME_MALFORMED for any other shape (no keys, cached keys or CACHE_KEYS, a task block, no 4-byte id). */
export function asKeySet(f: Frame): KeySetMsg {
  const k = f.keys;
  if (k.kind === 'none' || k.kind === 'cached') throw shape('a key set is a key list, a range or ranges');
  if (f.task) throw shape('a key set has no task block');
  if (f.flags & Flag.CACHE_KEYS) throw shape('a key set is not cached');
  if (f.body?.byteLength !== 4) throw shape('a key set needs a 4-byte set id (BYTES)');
  const id = new DataView(f.body.buffer, f.body.byteOffset, 4).getUint32(0, true);
  return { requestId: f.requestId, job: f.job, table: f.table, id, keys: k };
}
