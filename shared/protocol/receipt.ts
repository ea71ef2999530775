/**
 * Push receipts (PROTOCOL.md §6.3): a node that checks capabilities answers each PUSH made
 * under a task with an ACK whose body is a receipt — what it applied (or held already): job,
 * table, task, attempt, seq, how many keys, which node — sealed with a MAC only the cluster can
 * make (server/auth/receipt.ts). The worker hands its task's receipts back in TASK_DONE, opaque,
 * as base64url strings; the scheduler counts the task done only when they cover its pushes.
 *
 * This module is the layout alone (no crypto: it runs in the browser too):
 *   u8 version (1) · u8 flags (bit 0: the push was a duplicate) · u16 node id length
 *   · u32 job · u32 table · u32 task · u32 attempt · u32 seq · u32 keys · node id (UTF-8)
 *   · MAC (16 bytes). Integers little-endian.
 */
import { TabshardError } from '../errors.ts';

export const RECEIPT_VERSION = 1;
/** Bytes of the fixed fields before the node id. */
export const RECEIPT_HEAD = 28;
/** Bytes of the MAC at the end. */
export const RECEIPT_MAC = 16;
/** Longest node id a receipt carries. */
export const MAX_RECEIPT_NODE = 64;
/** Receipts one TASK_DONE may carry. */
export const MAX_RECEIPTS = 1024;
/** Longest receipt string (base64url of the largest receipt). */
export const MAX_RECEIPT_CHARS = Math.ceil(((RECEIPT_HEAD + MAX_RECEIPT_NODE + RECEIPT_MAC) * 4) / 3);

/** What a receipt says. */
export interface ReceiptFields {
  node: string;
  job: number;
  table: number;
  task: number;
  attempt: number;
  seq: number;
  /** Keys of the push frame (a range counts end − begin). */
  keys: number;
  duplicate: boolean;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** The receipt's bytes before the MAC (what the MAC covers). */
export function receiptBody(r: ReceiptFields): Uint8Array {
  const node = utf8.encode(r.node);
  if (node.byteLength > MAX_RECEIPT_NODE) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'node id too long');
  const out = new Uint8Array(RECEIPT_HEAD + node.byteLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, RECEIPT_VERSION);
  v.setUint8(1, r.duplicate ? 1 : 0);
  v.setUint16(2, node.byteLength, true);
  const fields = [r.job, r.table, r.task, r.attempt, r.seq, r.keys];
  for (let i = 0; i < fields.length; i++) v.setUint32(4 + 4 * i, fields[i], true);
  out.set(node, RECEIPT_HEAD);
  return out;
}

/** Splits a receipt into its fields and MAC; TS_ERR_TASK_NOT_APPLIED when it is not one. */
export function parseReceipt(bytes: Uint8Array): { fields: ReceiptFields; body: Uint8Array; mac: Uint8Array } {
  const bad = (why: string): never => {
    throw new TabshardError('TS_ERR_TASK_NOT_APPLIED', `not a push receipt: ${why}`);
  };
  if (bytes.byteLength < RECEIPT_HEAD + RECEIPT_MAC) bad('too short');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint8(0) !== RECEIPT_VERSION) bad('unknown version');
  if ((v.getUint8(1) & ~1) !== 0) bad('reserved flags');
  const n = v.getUint16(2, true);
  if (n > MAX_RECEIPT_NODE || bytes.byteLength !== RECEIPT_HEAD + n + RECEIPT_MAC) bad('wrong length');
  let node = '';
  try {
    node = utf8Strict.decode(bytes.subarray(RECEIPT_HEAD, RECEIPT_HEAD + n));
  } catch {
    bad('node id is not UTF-8');
  }
  const u = (i: number) => v.getUint32(4 + 4 * i, true);
  return {
    fields: {
      node,
      job: u(0),
      table: u(1),
      task: u(2),
      attempt: u(3),
      seq: u(4),
      keys: u(5),
      duplicate: v.getUint8(1) === 1,
    },
    body: bytes.subarray(0, RECEIPT_HEAD + n),
    mac: bytes.subarray(RECEIPT_HEAD + n),
  };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url without padding (how a worker carries a receipt in TASK_DONE). */
export function receiptToString(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 4) / 3));
    for (let k = 0; k < chars; k++) s += B64[(n >> (18 - 6 * k)) & 63];
  }
  return s;
}

/** The bytes of a base64url string; TS_ERR_TASK_NOT_APPLIED for anything else. */
export function receiptFromString(s: string): Uint8Array {
  if (s.length > MAX_RECEIPT_CHARS || s.length % 4 === 1 || !/^[A-Za-z0-9_-]*$/.test(s))
    throw new TabshardError('TS_ERR_TASK_NOT_APPLIED', 'not a push receipt: not base64url');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const c of s) {
    acc = (acc << 6) | B64.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
