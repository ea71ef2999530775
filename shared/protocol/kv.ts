/**
 * The kv family (PROTOCOL.md §kv): push, pull, pull-reply, ack. Each `encodeX` has its `asX`
 * beside it, which checks that a decoded frame has the shape that message needs.
 */
import { TabshardError } from '../errors.ts';
import {
  type CachedKeys,
  type EncodeOptions,
  emptyFrame,
  encodeFrame,
  Flag,
  type Frame,
  type KeySegment,
  MsgType,
  type TaskStamp,
} from './frame.ts';
import { type PackedValues, packParts } from './values.ts';

/** Keys of a kv request: a contiguous range, an explicit sorted list, or several ranges. */
export type KvKeys = Exclude<KeySegment, { kind: 'none' } | CachedKeys>;

/** Keys as a request may carry them on the wire: as KvKeys, or a cached list named by its hash. */
export type WireKeys = KvKeys | CachedKeys;

/**
 * The keys of a decoded request, which its receiver has already turned from a cached hash into
 * the list (ServerNode does, per connection); a cached segment left over is refused.
 */
export function requestKeys(keys: KeySegment, what: string): KvKeys {
  if (keys.kind === 'none') throw shape(`${what} without keys`);
  if (keys.kind === 'cached') throw new TabshardError('TS_ERR_KEYS_NOT_CACHED', `${what}: no cached key lists here`);
  return keys;
}

/** How many keys `keys` names. */
export function countKeys(keys: KvKeys): number {
  if (keys.kind === 'range') return keys.end - keys.begin;
  if (keys.kind === 'list') return keys.keys.length;
  let n = 0;
  for (let i = 0; i < keys.bounds.length; i += 2) n += keys.bounds[i + 1] - keys.bounds[i];
  return n;
}

/** One past the largest key `keys` names (0 for none): what a key-space check compares. */
export function keysEnd(keys: KvKeys): number {
  if (keys.kind === 'range') return keys.end;
  if (keys.kind === 'list') return keys.keys.length === 0 ? 0 : keys.keys[keys.keys.length - 1] + 1;
  return keys.bounds.length === 0 ? 0 : keys.bounds[keys.bounds.length - 1];
}

export interface PushMsg {
  requestId: number;
  job: number;
  table: number;
  clock: number;
  task: TaskStamp | null;
  keys: KvKeys;
  values: Float32Array;
}

/** A push to encode: its values may be given as parts, sent one after another (gathered, not copied). */
export type PushInput = Omit<PushMsg, 'values' | 'keys'> & {
  keys: WireKeys;
  /** Floats, floats as parts, or a value segment already packed (F16, Q8, COMPRESSED). */
  values: Float32Array | readonly Float32Array[] | PackedValues;
  /** Flag.CACHE_KEYS to have the node remember a key list (§5.2); default none. */
  flags?: number;
};

export interface PullMsg {
  requestId: number;
  job: number;
  table: number;
  clock: number;
  keys: KvKeys;
  /** The reply's values as F16 (flag HALF). */
  half: boolean;
  /** The reply's values deflated where that pays (flag COMPRESS). */
  compress: boolean;
}

/** A pull to encode (keys may name a cached list; flags as for PushInput). */
export type PullInput = Omit<PullMsg, 'keys' | 'half' | 'compress'> & { keys: WireKeys; flags?: number };

const shape = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

/** `opts`: a pool for long key lists, and/or a key check fused into the encoding (see EncodeOptions). */
export function encodePush(m: PushInput, opts?: EncodeOptions): Uint8Array[] {
  const v = m.values;
  const packed = v instanceof Float32Array || Array.isArray(v) ? undefined : (v as PackedValues);
  const parts = v instanceof Float32Array || packed ? undefined : (v as readonly Float32Array[]);
  return encodeFrame(
    {
      type: MsgType.PUSH,
      flags: m.flags ?? 0,
      requestId: m.requestId,
      job: m.job,
      table: m.table,
      clock: m.clock,
      task: m.task,
      keys: m.keys,
      values: v instanceof Float32Array ? v : null,
      body: null,
      ...(packed ? { packed } : {}),
    },
    parts,
    opts,
  );
}

export function asPush(f: Frame): PushMsg {
  const keys = requestKeys(f.keys, 'push');
  if (!f.values) throw shape('push without float32 values');
  return {
    requestId: f.requestId,
    job: f.job,
    table: f.table,
    clock: f.clock,
    task: f.task,
    keys,
    values: f.values,
  };
}

/** `opts` as for `encodePush`. */
export function encodePull(m: PullInput, opts?: EncodeOptions): Uint8Array[] {
  return encodeFrame(
    {
      type: MsgType.PULL,
      flags: m.flags ?? 0,
      requestId: m.requestId,
      job: m.job,
      table: m.table,
      clock: m.clock,
      task: null,
      keys: m.keys,
      values: null,
      body: null,
    },
    undefined,
    opts,
  );
}

export function asPull(f: Frame): PullMsg {
  const keys = requestKeys(f.keys, 'pull');
  if (f.values || f.body) throw shape('pull with a value segment');
  const half = (f.flags & Flag.HALF) !== 0;
  const compress = (f.flags & Flag.COMPRESS) !== 0;
  return { requestId: f.requestId, job: f.job, table: f.table, clock: f.clock, keys, half, compress };
}

/**
 * The values of a pull, in the order of the request's keys (d per key), sent as gathered parts;
 * as F16 and/or deflated when the pull asked (`m`): then packed into a copy, and `parts` may be
 * released at once.
 */
export function encodePullReply(
  requestId: number,
  parts: readonly Float32Array[],
  m?: Pick<PullMsg, 'half' | 'compress'>,
): Uint8Array[] {
  const f = emptyFrame(MsgType.PULL_REPLY, requestId);
  if (!m?.half && !m?.compress) return encodeFrame(f, parts);
  f.packed = packParts(parts, m.half, m.compress);
  return encodeFrame(f);
}

export function asPullReply(f: Frame): Float32Array {
  return f.values ?? new Float32Array(0);
}

/**
 * Acknowledges a push; `duplicate` says it had been applied before and changed nothing now;
 * `receipt`, the push's receipt (PROTOCOL.md §6.3) as the body.
 */
export function encodeAck(requestId: number, duplicate = false, receipt?: Uint8Array): Uint8Array[] {
  const f = emptyFrame(MsgType.ACK, requestId);
  f.flags = duplicate ? Flag.DUPLICATE : 0;
  if (receipt !== undefined) f.body = receipt;
  return encodeFrame(f);
}

export function ackIsDuplicate(f: Frame): boolean {
  return (f.flags & Flag.DUPLICATE) !== 0;
}
