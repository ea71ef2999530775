/**
 * The kv family (PROTOCOL.md §kv): push, pull, pull-reply, ack. Each `encodeX` has its `asX`
 * beside it, which checks that a decoded frame has the shape that message needs.
 */
import { TabshardError } from '../errors.ts';
import {
  type EncodeOptions,
  emptyFrame,
  encodeFrame,
  Flag,
  type Frame,
  type KeySegment,
  MsgType,
  type TaskStamp,
} from './frame.ts';

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

/** `opts`: a pool for long key lists, and/or a key check fused into the encoding (see EncodeOptions). */
export function encodePush(m: PushMsg, opts?: EncodeOptions): Uint8Array[] {
  return encodeFrame(
    {
      type: MsgType.PUSH,
      flags: 0,
      requestId: m.requestId,
      job: m.job,
      table: m.table,
      clock: m.clock,
      task: m.task,
      keys: m.keys,
      values: m.values,
      body: null,
    },
    undefined,
    opts,
  );
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

/** `opts` as for `encodePush`. */
export function encodePull(m: PullMsg, opts?: EncodeOptions): Uint8Array[] {
  return encodeFrame(
    {
      type: MsgType.PULL,
      flags: 0,
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
  const f = emptyFrame(MsgType.ACK, requestId);
  f.flags = duplicate ? Flag.DUPLICATE : 0;
  return encodeFrame(f);
}

export function ackIsDuplicate(f: Frame): boolean {
  return (f.flags & Flag.DUPLICATE) !== 0;
}
