/**
 * Send-queue tests against fake sinks that count their native reads and drain by hand: the
 * JS-counted bound reads `bufferedAmount` only near the high-water mark, back-pressure holds
 * (the sink never holds more than the high-water mark plus one piece), `onSent` runs once per
 * message after its last piece, order is kept, and chunks cut into the shared scratch buffer
 * arrive intact when the sink copies on send.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../rng.ts';
import { type ChunkChannel, ChunkedConn } from './chunked-conn.ts';
import { Reassembler } from './chunker.ts';
import { type Pieces, SendQueue, type SendSink, WholeMessage } from './send-queue.ts';

/** A sink that records what it was handed (copied when `copies`) and counts `bufferedAmount` reads. */
function countingSink(opts: { evented?: boolean; copies?: boolean } = {}) {
  const f = {
    sent: [] as Uint8Array[],
    buffered: 0,
    maxBuffered: 0,
    reads: 0,
    /** Native reads made before each piece was handed over. */
    readsAtSend: [] as number[],
    low: null as null | [number, () => void],
  };
  const sink: SendSink & ChunkChannel = {
    send: (p) => {
      f.sent.push(opts.copies ? p.slice() : p);
      f.readsAtSend.push(f.reads);
      f.buffered += p.byteLength;
      f.maxBuffered = Math.max(f.maxBuffered, f.buffered);
    },
    get bufferedAmount() {
      f.reads++;
      return f.buffered;
    },
    onceLow: opts.evented
      ? (threshold, cb) => {
          f.low = [threshold, cb];
        }
      : undefined,
    copiesOnSend: opts.copies,
    close: () => {},
  };
  /** The wire takes `n` bytes (all by default); fires the low event when it is crossed. */
  const drain = (n = f.buffered) => {
    f.buffered -= Math.min(n, f.buffered);
    const low = f.low;
    if (low && f.buffered <= low[0]) {
      f.low = null;
      low[1]();
    }
  };
  return { f, sink, drain };
}

/** A message of `n` pieces of `size` bytes each, piece i filled with `tag + i`. */
class FakePieces implements Pieces {
  private i = 0;
  constructor(
    private readonly n: number,
    private readonly size: number,
    private readonly tag: number,
  ) {}
  get done(): boolean {
    return this.i === this.n;
  }
  next(): Uint8Array {
    return new Uint8Array(this.size).fill((this.tag + this.i++) & 255);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('send queue', () => {
  it('reads the native bufferedAmount only when the JS-counted bytes reach the high-water mark', async () => {
    const { f, sink, drain } = countingSink();
    const q = new SendQueue(sink, { highWaterMark: 100_000, lowWaterMark: 20_000 }, assert.fail);
    let sent = 0;
    // 1000 messages of 1 KB over a wire that keeps up: 1 MB through a 100 kB mark.
    for (let i = 0; i < 1000; i++) {
      q.push(new WholeMessage(new Uint8Array(1000)), () => sent++);
      drain();
    }
    await tick();
    assert.equal(f.sent.length, 1000);
    assert.equal(sent, 1000);
    assert.ok(f.reads <= 10, `${f.reads} native reads for 1 MB at a 100 kB mark`);
  });

  for (const evented of [false, true]) {
    it(`holds back-pressure on a slow wire and keeps order and onSent (${evented ? 'event' : 'polling'})`, async () => {
      const { f, sink, drain } = countingSink({ evented });
      const high = 50_000;
      const q = new SendQueue(sink, { highWaterMark: high, lowWaterMark: 10_000, pollMs: 1 }, assert.fail);
      const rng = createRng(9);
      const shape = Array.from({ length: 60 }, () => [1 + rng.int(8), 1 + rng.int(9000)] as const);
      const onSent: number[] = [];
      const piecesSentAt: number[] = [];
      let expected = 0;
      shape.forEach(([n, size], m) => {
        q.push(new FakePieces(n, size, m * 16), () => {
          onSent.push(m);
          assert.ok(f.sent.length >= piecesSentAt[m], 'onSent after the last piece');
        });
        expected += n;
        piecesSentAt[m] = expected;
      });
      while (f.sent.length < expected) {
        const before = f.sent.length;
        drain(7000 + rng.int(20_000));
        // The event resumes the queue synchronously; the poll on its next timer.
        if (!evented)
          for (let i = 0; i < 4 && f.sent.length === before; i++) await new Promise((r) => setTimeout(r, 2));
      }
      await tick();
      assert.ok(f.maxBuffered <= high + 9000, `sink held ${f.maxBuffered} bytes`);
      assert.deepEqual(
        onSent,
        shape.map((_, m) => m),
      );
      let k = 0;
      shape.forEach(([n, size], m) => {
        for (let i = 0; i < n; i++, k++) {
          assert.equal(f.sent[k].byteLength, size);
          assert.equal(f.sent[k][0], (m * 16 + i) & 255, `message ${m} piece ${i} in order`);
        }
      });
    });
  }

  it('resumes on the low event without reading the native amount again', () => {
    const { f, sink, drain } = countingSink({ evented: true });
    const q = new SendQueue(sink, { highWaterMark: 10_000, lowWaterMark: 2_000 }, assert.fail);
    q.push(new FakePieces(30, 1000, 0));
    assert.equal(f.sent.length, 10, 'stopped at the mark');
    assert.equal(f.reads, 2, 'one read at the mark, one as the wait begins');
    drain(9000); // 1000 left: crosses the low mark, the event fires
    // From the bound the event gives (the low mark), 8 pieces go before the mark is reached again.
    assert.ok(f.sent.length >= 18);
    assert.deepEqual(f.readsAtSend.slice(10, 18), Array(8).fill(2), 'no native read after the event');
  });

  it('stops for good: nothing is handed over after stop, and onSent of dropped messages never runs', async () => {
    const { f, sink, drain } = countingSink();
    const q = new SendQueue(sink, { highWaterMark: 1000, lowWaterMark: 0, pollMs: 1 }, assert.fail);
    let sent = 0;
    q.push(new FakePieces(5, 400, 0), () => sent++);
    q.push(new WholeMessage(new Uint8Array(10)), () => sent++);
    q.stop();
    drain();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(f.sent.length, 3);
    assert.equal(sent, 0);
  });

  it('reports a throwing sink through onerror', () => {
    const errors: string[] = [];
    const sink: SendSink = {
      send: () => {
        throw new Error('send queue is full');
      },
      bufferedAmount: 0,
    };
    new SendQueue(sink, {}, (e) => errors.push(e.code)).push(new WholeMessage(new Uint8Array(1)));
    assert.deepEqual(errors, ['TS_ERR_TRANSPORT_CLOSED']);
  });
});

describe('ChunkedConn over a sink that copies on send', () => {
  it('cuts chunks into one reused buffer and still delivers every message intact', async () => {
    const { f, sink, drain } = countingSink({ copies: true });
    const conn = new ChunkedConn(sink, { kind: 'webrtc', remote: 'fake', chunkSize: 1000, highWaterMark: 20_000 });
    const other = new ChunkedConn(countingSink({ copies: true }).sink, { kind: 'webrtc', remote: 'b', chunkSize: 600 });
    const rng = createRng(21);
    const msgs = Array.from({ length: 80 }, (_, i) => {
      const m = new Uint8Array(rng.int(i % 7 === 0 ? 30_000 : 1500));
      for (let j = 0; j < m.length; j++) m[j] = rng.int(256);
      return m;
    });
    for (const m of msgs) {
      conn.send([m.subarray(0, m.length >> 1), m.subarray(m.length >> 1)]);
      other.send([m]); // another connection cutting into the same scratch in between
    }
    while (true) {
      const before = f.sent.length;
      drain();
      await new Promise((r) => setTimeout(r, 2));
      if (f.sent.length === before) break;
    }
    const r = new Reassembler();
    const got = f.sent.map((c) => r.push(c)).filter((m) => m !== null);
    assert.equal(got.length, msgs.length);
    for (const [i, m] of got.entries()) assert.deepEqual(m, msgs[i], `message ${i}`);
  });
});
