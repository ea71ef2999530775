/**
 * The transport benchmark's raw echo (raw-echo.ts): what it takes and answers — an 8-byte ack for
 * a push, `size` bytes for a pull — and what it leaves to the node's frame decoder: other first
 * bytes and ops, short pulls, replies above its bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RAW_MAGIC, rawEcho, rawPull, rawPush } from './raw-echo.ts';

/** What the echo does with `msg`: null when it leaves it, else the byte counts it sent back. */
function run(echo: ReturnType<typeof rawEcho>, msg: Uint8Array): number[] | null {
  const sent: number[] = [];
  return echo(msg, (b) => sent.push(b.byteLength)) ? sent : null;
}

describe('bench lab: raw echo', () => {
  it('acknowledges a raw push with 8 bytes and answers a raw pull with the size it names', () => {
    const echo = rawEcho(1 << 20);
    assert.deepEqual(run(echo, rawPush(4096)), [8]);
    assert.equal(rawPush(4096).byteLength, 4096);
    assert.deepEqual(run(echo, rawPull(32, 65_536)), [65_536]);
    assert.deepEqual(run(echo, rawPull(32, 100)), [100]);
    assert.deepEqual(run(echo, rawPull(32, 1 << 20)), [1 << 20]);
    assert.equal(rawPull(2, 10).byteLength, 8);
  });

  it('leaves every other message to the node: frames, other ops, short pulls, replies above its bound', () => {
    const echo = rawEcho(1024);
    const frameLike = new Uint8Array(32);
    frameLike[0] = 1; // protocol version 1
    assert.equal(run(echo, frameLike), null);
    assert.equal(run(echo, Uint8Array.of(RAW_MAGIC)), null);
    assert.equal(run(echo, Uint8Array.of(RAW_MAGIC, 3, 0, 0, 0, 0, 0, 0)), null);
    assert.equal(run(echo, Uint8Array.of(RAW_MAGIC, 2, 0, 0, 1, 0)), null);
    assert.equal(run(echo, rawPull(8, 1025)), null);
    assert.equal(run(echo, rawPull(8, 0xffff_ffff)), null);
    assert.deepEqual(run(echo, rawPull(8, 1024)), [1024]);
  });
});
