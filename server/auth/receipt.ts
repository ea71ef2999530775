/**
 * Push receipts' MACs (PROTOCOL.md §6.3; layout in shared/protocol/receipt.ts): HMAC-SHA256,
 * cut to 16 bytes, under a key derived (HKDF-SHA256) from the cluster's admin token, which the
 * nodes and the scheduler's process hold and workers never see. A node seals what it applied; the
 * scheduler opens what a TASK_DONE hands back. Node:crypto only, compared in constant time.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { TabshardError } from '../../shared/errors.ts';
import {
  parseReceipt,
  RECEIPT_MAC,
  type ReceiptFields,
  receiptBody,
  receiptFromString,
} from '../../shared/protocol/receipt.ts';

export class ReceiptKey {
  private readonly key: Buffer;

  constructor(adminToken: string) {
    this.key = Buffer.from(hkdfSync('sha256', adminToken, 'tabshard', 'push receipts v1', 32));
  }

  /** The receipt bytes for `r` (body and MAC): a node's ACK body. */
  seal(r: ReceiptFields): Uint8Array {
    const body = receiptBody(r);
    const out = new Uint8Array(body.byteLength + RECEIPT_MAC);
    out.set(body);
    out.set(this.mac(body), body.byteLength);
    return out;
  }

  /** The fields of a receipt string from a TASK_DONE; TS_ERR_TASK_NOT_APPLIED unless this cluster sealed it. */
  open(s: string): ReceiptFields {
    const { fields, body, mac } = parseReceipt(receiptFromString(s));
    if (!timingSafeEqual(this.mac(body), mac))
      throw new TabshardError('TS_ERR_TASK_NOT_APPLIED', 'a push receipt this cluster did not seal');
    return fields;
  }

  private mac(body: Uint8Array): Uint8Array {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, RECEIPT_MAC);
  }
}
