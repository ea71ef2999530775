/**
 * StreamConn's reassembly: messages of every size cut at every kind of boundary, read into one
 * reused buffer (as with `onread`), reach a transient receiver intact and a keeping receiver
 * unchanged later; a peer that claims a large message and stalls costs a small multiple of what
 * it sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng } from '../rng.ts';
import { type ByteStream, StreamConn } from './stream.ts';

/** A socket that only records; the test feeds `receive` itself. */
const quietSocket = (): ByteStream => ({
  write: () => true,
  cork() {},
  uncork() {},
  on: () => undefined,
  destroy() {},
  end() {},
});

/** Length-prefixed messages, concatenated as they go on the wire. */
function wire(msgs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(msgs.reduce((n, m) => n + 4 + m.byteLength, 0));
  let o = 0;
  for (const m of msgs) {
    new DataView(out.buffer).setUint32(o, m.byteLength, true);
    out.set(m, o + 4);
    o += 4 + m.byteLength;
  }
  return out;
}

/** Feeds `bytes` in random pieces, each copied into the same reused read buffer first. */
function feed(conn: StreamConn, bytes: Uint8Array, seed: number): void {
  const rng = createRng(seed);
  const readBuf = new Uint8Array(300_000);
  for (let off = 0; off < bytes.byteLength; ) {
    const n = Math.min(bytes.byteLength - off, 1 + rng.int(rng.next() < 0.5 ? 16 : 300_000));
    readBuf.set(bytes.subarray(off, off + n));
    conn.receive(readBuf.subarray(0, n), false);
    readBuf.fill(0xee, 0, n); // the next read overwrites the buffer
    off += n;
  }
}

function messages(seed: number): Uint8Array[] {
  const rng = createRng(seed);
  return Array.from({ length: 60 }, (_, i) => {
    const size = [0, 1, 3, 4, 100, 70_000, 1 << 20][rng.int(7)] + rng.int(5);
    return Uint8Array.from({ length: size }, (_, j) => (i * 31 + j * 7) & 255);
  });
}

test('a transient receiver sees every message intact while it runs, whatever the read boundaries', () => {
  for (const seed of [1, 2, 3]) {
    const msgs = messages(seed);
    const conn = new StreamConn(quietSocket(), 'tcp', 'test', 1 << 24, false);
    conn.transientMessages = true;
    let i = 0;
    conn.onmessage = (m) => {
      assert.deepEqual(m, msgs[i], `message ${i} (seed ${seed})`);
      i++;
    };
    feed(conn, wire(msgs), seed);
    assert.equal(i, msgs.length);
  }
});

test('a receiver that keeps its messages finds them unchanged after later reads', () => {
  const msgs = messages(4);
  const conn = new StreamConn(quietSocket(), 'tcp', 'test', 1 << 24, false);
  const got: Uint8Array[] = [];
  conn.onmessage = (m) => got.push(m);
  feed(conn, wire(msgs), 4);
  assert.equal(got.length, msgs.length);
  for (let i = 0; i < msgs.length; i++) assert.deepEqual(got[i], msgs[i], `message ${i}`);
});

test('a peer that declares a large message and stalls costs a small multiple of what it sent', () => {
  const conn = new StreamConn(quietSocket(), 'tcp', 'test', 256 * 1024 * 1024, false);
  conn.onmessage = () => assert.fail('no message is complete');
  const before = process.memoryUsage().arrayBuffers;
  const head = new Uint8Array(4 + 1000);
  new DataView(head.buffer).setUint32(0, 200 * 1024 * 1024, true);
  conn.receive(head, false);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'nothing near the declared 200 MiB was allocated');
});
