/**
 * The worker's pooled encode buffers: the head of a long key list is lent from a pool and comes
 * back only through the transport's onSent, so a message the transport still holds is never
 * overwritten by a later request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TabshardError } from '../shared/errors.ts';
import { decodeFrame, MsgType } from '../shared/protocol/frame.ts';
import { encodeAck, encodePullReply } from '../shared/protocol/kv.ts';
import { Ring } from '../shared/ring.ts';
import { createRng, randomSortedKeys } from '../shared/rng.ts';
import type { TableSpec } from '../shared/table.ts';
import { type Conn, concatParts, type Dialer } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

/** A server end played by the test: answers at once (pulls with zeros), but finishes sends only when told. */
class HoldingConn implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://n1';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  /** Sends in order: the parts as lent (not copied) and their onSent, not yet called. */
  readonly sends: Array<{ parts: readonly Uint8Array[]; onSent?: () => void }> = [];

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    this.sends.push({ parts, onSent });
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.byteLength;
    }
    const f = decodeFrame(joined);
    const n = f.keys.kind === 'list' ? f.keys.keys.length : 0;
    const reply =
      f.type === MsgType.PULL ? encodePullReply(f.requestId, [new Float32Array(n)]) : encodeAck(f.requestId);
    queueMicrotask(() => this.onmessage?.(concatParts(reply)));
  }

  close(): void {
    this.closed = true;
  }
}

const TABLE: TableSpec = {
  job: 0,
  id: 1,
  name: 'sparse',
  kind: 'sparse',
  keySpace: 2 ** 40,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
};

async function oneNodeWorker(conn: HoldingConn): Promise<Worker> {
  const dialer: Dialer = { kind: 'memory', dial: async () => conn };
  return Worker.connect({
    seed: async () => ({
      ring: new Ring(['n1']).toJSON(),
      addresses: { n1: { memory: 'memory://n1' } },
      tables: [TABLE],
    }),
    dialers: { memory: dialer },
    workerId: 7,
  });
}

const sentFrame = (conn: HoldingConn, i: number) => {
  const parts = conn.sends[i].parts;
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    joined.set(p, o);
    o += p.byteLength;
  }
  return decodeFrame(joined);
};

describe('worker key checks fused into encoding', () => {
  it('refuses bad key lists synchronously with the codes of checkSortedKeys, sending nothing and taking no seq', async () => {
    const conn = new HoldingConn();
    const w = await oneNodeWorker(conn);
    const t = w.table('sparse');
    const one = Float32Array.of(1, 1, 1);
    assert.throws(() => t.push(Float64Array.of(1, 5, 5), one), { code: 'TS_ERR_KEYS_UNSORTED' });
    assert.throws(() => t.push(Float64Array.of(1, 2.5, 9), one), { code: 'TS_ERR_KEY_OUT_OF_RANGE' });
    assert.throws(() => t.push(Float64Array.of(1, Number.NaN, 9), one), { code: 'TS_ERR_KEY_OUT_OF_RANGE' });
    assert.throws(() => t.push(Float64Array.of(1, 2, 2 ** 40), one), { code: 'TS_ERR_KEY_OUT_OF_RANGE' });
    assert.throws(() => t.push(Float64Array.of(1, 2, 3), Float32Array.of(1)), { code: 'TS_ERR_VALUE_LENGTH' });
    assert.throws(() => t.pull(Float64Array.of(3, 2, 1)), { code: 'TS_ERR_KEYS_UNSORTED' });
    assert.throws(() => t.pull(Float64Array.of(1, 2), { out: new Float32Array(3) }), { code: 'TS_ERR_VALUE_LENGTH' });
    assert.equal(conn.sends.length, 0);

    const keys = Float64Array.of(0, 7, 2 ** 33, 2 ** 39); // a gap of 2^32 or more: sent as LIST64
    await w.wait(t.push(keys, Float32Array.of(1, 2, 3, 4)));
    await w.wait(t.push(keys.subarray(0, 2), Float32Array.of(1, 2)));
    await w.wait(t.pull(keys));
    assert.deepEqual(sentFrame(conn, 0).keys, { kind: 'list', keys });
    assert.equal(sentFrame(conn, 0).task?.seq, 0, 'the refused pushes took no seq');
    assert.equal(sentFrame(conn, 1).task?.seq, 1);
    assert.deepEqual(sentFrame(conn, 2).keys, { kind: 'list', keys });
    assert.deepEqual(
      conn.sends.map((_, i) => sentFrame(conn, i).requestId),
      [1, 2, 3],
    );
    w.close();
  });
});

describe('worker encode pool', () => {
  it('does not reuse a pooled head before the transport called onSent, and reuses it after', async () => {
    const conn = new HoldingConn();
    const w = await oneNodeWorker(conn);
    const t = w.table('sparse');
    // 40,000 keys: a DELTA32 head of ~160 KB, above the pool's 64 KiB threshold.
    const keys = randomSortedKeys(createRng(5), 40_000, 2 ** 40);
    const other = randomSortedKeys(createRng(6), 40_000, 2 ** 40);
    const values = new Float32Array(keys.length).fill(1);

    await w.wait(t.push(keys, values));
    const first = conn.sends[0].parts[0];
    const snapshot = first.slice();
    await w.wait(t.push(other, values)); // the first send is not finished: its head stays lent
    const second = conn.sends[1].parts[0];
    assert.notEqual(second.buffer, first.buffer);
    assert.deepEqual(first, snapshot);

    conn.sends[0].onSent?.();
    await w.wait(t.push(other, values));
    assert.equal(conn.sends[2].parts[0].buffer, first.buffer, 'given back by onSent, then reused');
    assert.notEqual(conn.sends[2].parts[0].buffer, second.buffer);
    w.close();
  });
});

describe('worker push stamps', () => {
  it('puts the ring version in task seqs (counter from 0 per attempt); ad-hoc seqs just count on', async () => {
    const conn = new HoldingConn();
    let version = 3;
    const w = await Worker.connect({
      seed: async () => ({
        ring: new Ring(['n1'], { version }).toJSON(),
        addresses: { n1: { memory: 'memory://n1' } },
        tables: [TABLE],
      }),
      dialers: { memory: { kind: 'memory', dial: async () => conn } },
      workerId: 7,
    });
    const t = w.table('sparse');
    const one = Float32Array.of(1);
    const seqs = () => conn.sends.map((_, i) => sentFrame(conn, i).task!.seq);
    w.setTask(5, 0);
    await w.wait(t.push(Float64Array.of(1), one));
    await w.wait(t.push(Float64Array.of(2), one));
    w.setTask(5, 1); // a re-run under the same ring: the same seqs again
    await w.wait(t.push(Float64Array.of(1), one));
    version = 4;
    await w.refresh();
    w.setTask(5, 2); // a re-run under another ring: other seqs
    await w.wait(t.push(Float64Array.of(1), one));
    version = 256 + 4; // the version's low 8 bits
    await w.refresh();
    w.setTask(5, 3);
    await w.wait(t.push(Float64Array.of(1), one));
    w.setTask(0, 0);
    await w.wait(t.push(Float64Array.of(1), one));
    await w.wait(t.push(Float64Array.of(1), one));
    assert.deepEqual(seqs(), [3 * 2 ** 24, 3 * 2 ** 24 + 1, 3 * 2 ** 24, 4 * 2 ** 24, 4 * 2 ** 24, 0, 1]);
    assert.throws(() => w.stamps(2 ** 24 + 1, { task: 6, attempt: 0 }, false), { code: 'TS_ERR_INVALID_ARGUMENT' });
    w.close();
  });
});
