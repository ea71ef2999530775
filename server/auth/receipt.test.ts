/**
 * Push receipts (PROTOCOL.md §6.3): the layout round-trips and is refused when bent; only the
 * cluster's key opens what it sealed; and a TASK_DONE's receipts count only when, per table, the
 * keys of distinct frames come to exactly what the task pushes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import {
  MAX_RECEIPT_CHARS,
  parseReceipt,
  type ReceiptFields,
  receiptFromString,
  receiptToString,
} from '../../shared/protocol/receipt.ts';
import { checkReceipts, type ReceiptChecker } from '../scheduler/receipts.ts';
import { ReceiptKey } from './receipt.ts';

const isCode = (code: string) => (e: unknown) => e instanceof TabshardError && e.code === code;
const base: ReceiptFields = {
  node: 'n1',
  job: 3,
  table: 0,
  task: 7,
  attempt: 1,
  seq: 0x02000000,
  keys: 40,
  duplicate: false,
};

describe('push receipts', () => {
  const key = new ReceiptKey('the admin token');
  const seal = (r: Partial<ReceiptFields>) => receiptToString(key.seal({ ...base, ...r }));

  it('lays a receipt out as PROTOCOL.md §6.3 says, and opens only what this cluster sealed', () => {
    const bytes = key.seal(base);
    assert.equal(bytes.byteLength, 28 + 2 + 16);
    const v = new DataView(bytes.buffer);
    assert.deepEqual(
      [v.getUint8(0), v.getUint8(1), v.getUint16(2, true), v.getUint32(4, true), v.getUint32(16, true)],
      [1, 0, 2, 3, 1],
    );
    assert.equal(v.getUint32(20, true), 0x02000000);
    assert.equal(new TextDecoder().decode(bytes.subarray(28, 30)), 'n1');
    assert.deepEqual(key.open(receiptToString(bytes)), base);
    assert.deepEqual(key.open(seal({ duplicate: true, node: 'ñode-7' })), { ...base, duplicate: true, node: 'ñode-7' });
    // Another cluster's key, a flipped bit anywhere, a cut: refused.
    assert.throws(
      () => new ReceiptKey('another token').open(receiptToString(bytes)),
      isCode('TS_ERR_TASK_NOT_APPLIED'),
    );
    for (let i = 0; i < bytes.byteLength; i++) {
      const bent = bytes.slice();
      bent[i] ^= 0x10;
      assert.throws(() => key.open(receiptToString(bent)), isCode('TS_ERR_TASK_NOT_APPLIED'), `byte ${i}`);
    }
    assert.throws(() => key.open(receiptToString(bytes.subarray(0, 40))), isCode('TS_ERR_TASK_NOT_APPLIED'));
    assert.throws(() => parseReceipt(new Uint8Array(10)), isCode('TS_ERR_TASK_NOT_APPLIED'));
  });

  it('round-trips base64url of every length and refuses what is not', () => {
    for (let n = 0; n < 40; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const s = receiptToString(b);
      assert.match(s, /^[A-Za-z0-9_-]*$/);
      assert.deepEqual(receiptFromString(s), b);
      assert.equal(s, Buffer.from(b).toString('base64url'));
    }
    for (const bad of ['a', 'ab+c', 'ab/c', 'abc=', 'x'.repeat(MAX_RECEIPT_CHARS + 4)])
      assert.throws(() => receiptFromString(bad), isCode('TS_ERR_TASK_NOT_APPLIED'), bad);
  });

  it('counts a TASK_DONE only when the keys of distinct frames come to what the task pushes, per table', () => {
    const checker: ReceiptChecker = {
      open: (s) => key.open(s),
      expected: () =>
        new Map([
          [0, 100],
          [9, 1],
        ]),
    };
    const task = { task: 7, shard: 1, iteration: 2 };
    const check =
      (rs: string[], attempt = 1) =>
      () =>
        checkReceipts(3, task, attempt, rs, checker);
    const audit = seal({ table: 9, keys: 1, seq: 0x02000003, node: 'n3' });
    const whole = [seal({ keys: 40 }), seal({ keys: 60, seq: 0x02000001, node: 'n2' }), audit];
    assert.doesNotThrow(check(whole));
    // A frame acknowledged twice (resent, the second time a duplicate) counts once.
    assert.doesNotThrow(check([...whole, seal({ keys: 40, duplicate: true })]));
    // Re-sliced pieces of one frame on two nodes keep its seq: both count.
    assert.doesNotThrow(
      check([
        seal({ keys: 40 }),
        seal({ keys: 25, seq: 0x02000001, node: 'n2' }),
        seal({ keys: 35, seq: 0x02000001, node: 'n4' }),
        audit,
      ]),
    );
    const refused: Array<[string, string[], number?]> = [
      ['no receipts', []],
      ['a push missing', [seal({ keys: 40 }), audit]],
      ['the audit push missing', whole.slice(0, 2)],
      ['keys pushed twice under another seq', [...whole, seal({ keys: 40, seq: 0x02000009 })]],
      ['two receipts of one frame disagree', [...whole, seal({ keys: 41 })]],
      ['a table the task does not push', [...whole, seal({ table: 4, keys: 1, seq: 0x0200000a })]],
      ['another attempt', whole, 2],
      ['another task', [seal({ keys: 40, task: 8 }), ...whole.slice(1)]],
      ['another job', [seal({ keys: 40, job: 4 }), ...whole.slice(1)]],
      ['a forged receipt', [`${whole[0].slice(0, -2)}AA`, ...whole.slice(1)]],
    ];
    for (const [what, rs, attempt] of refused)
      assert.throws(check(rs, attempt), isCode('TS_ERR_TASK_NOT_APPLIED'), what);
  });
});
