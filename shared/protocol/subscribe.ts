/**
 * Eager SSP (docs/architecture.md §5, PROTOCOL.md §5.1): a worker SUBSCRIBEs to keys of a table on the
 * node that owns them; when the manager tells the node that a job's slowest clock advanced
 * (CLOCK), the node PUBLISHes the current values of every subscription, unasked. Each `encodeX`
 * has its `asX` beside it, which checks that a decoded frame has the shape that message needs.
 */
import { TabshardError } from '../errors.ts';
import { decodeObject, encodeJson } from './control.ts';
import { emptyFrame, encodeFrame, Flag, type Frame, MsgType } from './frame.ts';
import { type KvKeys, requestKeys } from './kv.ts';
import { packParts } from './values.ts';

/** Largest clock a publication carries (the header's clock is an i32). */
export const MAX_CLOCK = 0x7fffffff;

export interface SubscribeMsg {
  requestId: number;
  job: number;
  table: number;
  /** Chosen by the subscriber, unique among its live subscriptions on this connection (u32). */
  subscription: number;
  keys: KvKeys;
  /** Publications as F16 (flag HALF) and/or deflated where that pays (flag COMPRESS). */
  half?: boolean;
  compress?: boolean;
  /** The node may publish only the values that changed since the previous publication (flag CHANGED). */
  changed?: boolean;
}

export interface UnsubscribeMsg {
  requestId: number;
  job: number;
  table: number;
  subscription: number;
}

export interface PublishMsg {
  job: number;
  table: number;
  subscription: number;
  clock: number;
  /** d values per subscribed key, in the subscribed order; with `positions`, d per position. */
  values: Float32Array;
  /**
   * A publication of what changed (flag CHANGED): the positions, in the subscribed order, whose
   * values follow; every other value is as the previous publication had it.
   */
  positions?: Float64Array;
}

const shape = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

/** The 4-byte value segment (BYTES) that names a subscription: u32 little-endian. */
function idBody(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id, true);
  return b;
}

function readIdBody(f: Frame, what: string): number {
  if (f.body?.byteLength !== 4) throw shape(`${what} needs a 4-byte subscription id (BYTES)`);
  return new DataView(f.body.buffer, f.body.byteOffset, 4).getUint32(0, true);
}

/** SUBSCRIBE: keys RANGE or list, value BYTES = the subscription id; reply ACK. */
export function encodeSubscribe(m: SubscribeMsg): Uint8Array[] {
  return encodeFrame({
    ...emptyFrame(MsgType.SUBSCRIBE, m.requestId),
    flags: (m.half ? Flag.HALF : 0) | (m.compress ? Flag.COMPRESS : 0) | (m.changed ? Flag.CHANGED : 0),
    job: m.job,
    table: m.table,
    keys: m.keys,
    body: idBody(m.subscription),
  });
}

export function asSubscribe(f: Frame): SubscribeMsg {
  const keys = requestKeys(f.keys, 'subscribe');
  if (f.task) throw shape('subscribe with a task block');
  const subscription = readIdBody(f, 'subscribe');
  const asks = {
    ...(f.flags & Flag.HALF ? { half: true } : {}),
    ...(f.flags & Flag.COMPRESS ? { compress: true } : {}),
    ...(f.flags & Flag.CHANGED ? { changed: true } : {}),
  };
  return { requestId: f.requestId, job: f.job, table: f.table, subscription, keys, ...asks };
}

/** UNSUBSCRIBE: keys NONE, value BYTES = the subscription id; reply ACK (also for an unknown id). */
export function encodeUnsubscribe(m: UnsubscribeMsg): Uint8Array[] {
  return encodeFrame({
    ...emptyFrame(MsgType.UNSUBSCRIBE, m.requestId),
    job: m.job,
    table: m.table,
    body: idBody(m.subscription),
  });
}

export function asUnsubscribe(f: Frame): UnsubscribeMsg {
  if (f.keys.kind !== 'none') throw shape('unsubscribe with keys');
  if (f.task) throw shape('unsubscribe with a task block');
  return { requestId: f.requestId, job: f.job, table: f.table, subscription: readIdBody(f, 'unsubscribe') };
}

/**
 * PUBLISH (node → subscriber, no reply): request id = the subscription id, header clock = the
 * clock published, values as gathered parts (never copied), laid out as a PULL_REPLY's.
 */
/** A publication of `parts` (views of the store); packed as its SUBSCRIBE asked (`asks`), then a copy. */
export function encodePublish(
  m: Omit<PublishMsg, 'values'>,
  parts: readonly Float32Array[],
  asks?: { half?: boolean; compress?: boolean },
): Uint8Array[] {
  const f = {
    ...emptyFrame(MsgType.PUBLISH, m.subscription),
    job: m.job,
    table: m.table,
    clock: m.clock,
    ...(m.positions ? { flags: Flag.CHANGED, keys: { kind: 'list' as const, keys: m.positions } } : {}),
  };
  const opts = { deflateKeys: asks?.compress === true };
  if (!asks?.half && !asks?.compress) return encodeFrame(f, parts, opts);
  return encodeFrame({ ...f, packed: packParts(parts, asks.half === true, asks.compress === true) }, undefined, opts);
}

export function asPublish(f: Frame): PublishMsg {
  const changed = (f.flags & Flag.CHANGED) !== 0;
  if (changed ? f.keys.kind !== 'list' : f.keys.kind !== 'none')
    throw shape(changed ? 'a CHANGED publish lists positions (a key list)' : 'publish without CHANGED has no keys');
  if (f.task || f.body) throw shape('publish carries only float values');
  if (f.clock < 0) throw shape('publish clock below 0');
  return {
    job: f.job,
    table: f.table,
    subscription: f.requestId,
    clock: f.clock,
    values: f.values ?? new Float32Array(0),
    ...(f.keys.kind === 'list' ? { positions: f.keys.keys } : {}),
  };
}

/** Checks a clock: an integer in [0, MAX_CLOCK]. */
export function checkClock(clock: unknown): number {
  if (typeof clock !== 'number' || !Number.isInteger(clock) || clock < 0 || clock > MAX_CLOCK)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `clock must be an integer in [0, ${MAX_CLOCK}]`);
  return clock;
}

/** CLOCK (manager → node, admin): the slowest clock of `job` reached `clock`; publish. Reply ACK. */
export function encodeClock(requestId: number, job: number, clock: number): Uint8Array[] {
  return encodeJson(MsgType.CLOCK, requestId, { clock: checkClock(clock) }, job);
}

/** The clock of a CLOCK message; TS_ERR_FRAME_MALFORMED when the body is not `{"clock": c}`. */
export function parseClock(f: Frame): number {
  const o = decodeObject(f);
  try {
    return checkClock(o.clock);
  } catch (err) {
    throw shape((err as Error).message);
  }
}
