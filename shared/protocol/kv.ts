/**
 * The kv family (PROTOCOL.md §kv): push, pull, pull-reply, ack. Each `encodeX` has its `asX`
 * beside it, which checks that a decoded frame has the shape that message needs.
 */
import { TabshardError } from '../errors.ts';
import { emptyFrame, encodeFrame, Flag, type Frame, type KeySegment, MsgType, type TaskStamp } from './frame.ts';

/** Keys of a kv request: a contiguous range or an explicit sorted list. */
export type KvKeys = Exclude<KeySegment, { kind: 'none' }>;

export interface PushMsg {
  requestId: number;
  job: number;
  table: number;
  clock: number;
  task: TaskStamp | null;
  keys: KvKeys;
  values: Float32Array;
}

export interface PullMsg {
  requestId: number;
  job: number;
  table: number;
  clock: number;
  keys: KvKeys;
}

const shape = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

export function encodePush(m: PushMsg): Uint8Array[] {
  return encodeFrame({
    ...emptyFrame(MsgType.PUSH, m.requestId),
    job: m.job,
    table: m.table,
    clock: m.clock,
    task: m.task,
    keys: m.keys,
    values: m.values,
  });
}

export function asPush(f: Frame): PushMsg {
  if (f.keys.kind === 'none') throw shape('push without keys');
  if (!f.values) throw shape('push without float32 values');
  return {
    requestId: f.requestId,
    job: f.job,
    table: f.table,
    clock: f.clock,
    task: f.task,
    keys: f.keys,
    values: f.values,
  };
}

export function encodePull(m: PullMsg): Uint8Array[] {
  return encodeFrame({
    ...emptyFrame(MsgType.PULL, m.requestId),
    job: m.job,
    table: m.table,
    clock: m.clock,
    keys: m.keys,
  });
}

export function asPull(f: Frame): PullMsg {
  if (f.keys.kind === 'none') throw shape('pull without keys');
  if (f.values || f.body) throw shape('pull with a value segment');
  return { requestId: f.requestId, job: f.job, table: f.table, clock: f.clock, keys: f.keys };
}

/** The values of a pull, in the order of the request's keys (d per key), sent as gathered parts. */
export function encodePullReply(requestId: number, parts: readonly Float32Array[]): Uint8Array[] {
  return encodeFrame(emptyFrame(MsgType.PULL_REPLY, requestId), parts);
}

export function asPullReply(f: Frame): Float32Array {
  return f.values ?? new Float32Array(0);
}

/** Acknowledges a push; `duplicate` says it had been applied before and changed nothing now. */
export function encodeAck(requestId: number, duplicate = false): Uint8Array[] {
  return encodeFrame({ ...emptyFrame(MsgType.ACK, requestId), flags: duplicate ? Flag.DUPLICATE : 0 });
}

export function ackIsDuplicate(f: Frame): boolean {
  return (f.flags & Flag.DUPLICATE) !== 0;
}
