/**
 * The control family (PROTOCOL.md §control): error replies and JSON-bodied control messages
 * (hello, ring, table, stats, fence). Lease, heartbeat, task, task-done and clock are reserved
 * for the scheduler and use the same JSON-body shape.
 */
import { type ErrorCode, isErrorCode, TabshardError } from '../errors.ts';
import { emptyFrame, encodeFrame, type Frame, MsgType } from './frame.ts';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Encodes a control message whose body is the JSON of `body`. */
export function encodeJson(type: MsgType, requestId: number, body: unknown, job = 0): Uint8Array[] {
  return encodeFrame({ ...emptyFrame(type, requestId), job, body: utf8.encode(JSON.stringify(body)) });
}

/** Parses a control message's JSON body; TS_ERR_FRAME_MALFORMED for anything that is not JSON. */
export function decodeJson(f: Frame): unknown {
  if (!f.body) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'control message without a body');
  let text: string;
  try {
    text = utf8Strict.decode(f.body);
    return JSON.parse(text);
  } catch (err) {
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'body is not UTF-8 JSON', { cause: err });
  }
}

/** Decodes a JSON body that must be an object. */
export function decodeObject(f: Frame): Record<string, unknown> {
  const v = decodeJson(f);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'body must be an object');
  return v as Record<string, unknown>;
}

/** An error reply to request `requestId`, carrying the stable code and the message. */
export function encodeError(requestId: number, err: TabshardError): Uint8Array[] {
  return encodeJson(MsgType.ERROR, requestId, { code: err.code, message: err.message });
}

/** Turns an ERROR frame back into a TabshardError with the sender's code. */
export function decodeError(f: Frame): TabshardError {
  const o = decodeObject(f);
  const code: ErrorCode = isErrorCode(o.code) ? o.code : 'TS_ERR_INTERNAL';
  const message = typeof o.message === 'string' ? o.message.slice(0, 1000) : '';
  const err = new TabshardError(code);
  err.message = message || err.message;
  return err;
}

export type Role = 'worker' | 'server' | 'admin';

export interface Hello {
  role: Role;
  /** The worker id (u32) the sender stamps on its pushes; absent for servers and admins. */
  worker?: number;
  /** The sender's node id, for servers. */
  node?: string;
  /** The cluster's admin token (role admin): unlocks RING install, TABLE and FENCE. */
  token?: string;
}

export function parseHello(o: Record<string, unknown>): Hello {
  if (o.role !== 'worker' && o.role !== 'server' && o.role !== 'admin')
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'hello.role must be worker, server or admin');
  const h: Hello = { role: o.role };
  if (o.worker !== undefined) {
    if (typeof o.worker !== 'number' || !Number.isInteger(o.worker) || o.worker < 0 || o.worker > 0xffffffff)
      throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'hello.worker must be a u32');
    h.worker = o.worker;
  }
  if (o.node !== undefined) {
    if (typeof o.node !== 'string' || o.node.length > 200)
      throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'hello.node must be a string');
    h.node = o.node;
  }
  if (o.token !== undefined) {
    if (typeof o.token !== 'string' || o.token.length > 200)
      throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'hello.token must be a string');
    h.token = o.token;
  }
  return h;
}

/** FENCE: pushes of `task` from attempts below `attempt` are refused from now on (dead leases). */
export interface Fence {
  table: number;
  task: number;
  attempt: number;
}
