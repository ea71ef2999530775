/**
 * Chunk-layer tests: seeded round trips over random part layouts and chunk sizes, a fixed
 * byte fixture of the format, refusal of huge declared lengths without allocating, typed
 * errors for malformed chunk sequences, reassembly into a reused buffer for transient receivers
 * (and never for the others), the send queue of `ChunkedConn` against a fake channel (polled
 * and evented backpressure), and the signalling-message codec.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { type ChunkChannel, ChunkedConn } from './chunked-conn.ts';
import { chunkCount, MessageChunker, REUSE_MAX, Reassembler, splitMessage } from './chunker.ts';
import { concatParts } from './types.ts';
import { decodeSignal, encodeSignal } from './webrtc-peer.ts';

const isCode = (code: string) => (e: unknown) => e instanceof TabshardError && e.code === code;
const bytes = (...b: number[]) => Uint8Array.from(b);

describe('chunk layer', () => {
  it('round-trips seeded random part layouts at random chunk sizes', () => {
    const rng = createRng(42);
    const r = new Reassembler(1 << 20);
    for (let round = 0; round < 400; round++) {
      const parts = Array.from({ length: rng.int(6) }, () => {
        const p = new Uint8Array(rng.int(4) === 0 ? 0 : rng.int(rng.int(2) ? 300 : 40_000));
        for (let i = 0; i < p.length; i++) p[i] = rng.int(256);
        return p;
      });
      const chunkSize = 16 + rng.int(rng.int(2) ? 64 : 70_000);
      const whole = concatParts(parts);
      const chunks = splitMessage(parts, chunkSize);
      assert.equal(chunks.length, chunkCount(whole.length, chunkSize), `round ${round}`);
      chunks.forEach((c, i) => {
        assert.ok(c.byteLength <= chunkSize);
        if (i < chunks.length - 1) assert.equal(c.byteLength, chunkSize, 'all chunks but the last are full');
        const out = r.push(c);
        if (i < chunks.length - 1) assert.equal(out, null);
        else assert.deepEqual(out, whole, `round ${round}`);
      });
      assert.equal(r.pending, false);
    }
  });

  it('encodes the documented byte layout', () => {
    assert.deepEqual(splitMessage([bytes(1, 2), bytes(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)], 16), [
      bytes(1, 15, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
      bytes(0, 12, 13, 14, 15),
    ]);
    assert.deepEqual(splitMessage([], 16), [bytes(1, 0, 0, 0, 0)]);
    assert.deepEqual(new Reassembler().push(bytes(1, 0, 0, 0, 0)), new Uint8Array(0));
  });

  it('does not let the parts be referenced once every chunk is cut', () => {
    const part = new Uint8Array(100).fill(7);
    const c = new MessageChunker([part], 32);
    const chunks: Uint8Array[] = [];
    while (!c.done) chunks.push(c.next());
    part.fill(0);
    const r = new Reassembler();
    let out: Uint8Array | null = null;
    for (const ch of chunks) out = r.push(ch);
    assert.deepEqual(out, new Uint8Array(100).fill(7));
  });

  it('refuses a declared length above the maximum before allocating it', () => {
    const r = new Reassembler(1 << 20);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => r.push(bytes(1, 0xff, 0xff, 0xff, 0xff, 9)), isCode('TS_ERR_FRAME_TOO_LARGE'));
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no 4 GiB allocation');
    assert.deepEqual(r.push(bytes(1, 1, 0, 0, 0, 9)), bytes(9), 'usable afterwards');
  });

  it('gives TS_ERR_FRAME_MALFORMED for malformed or out-of-sequence chunks', () => {
    const cases: [string, Uint8Array[]][] = [
      ['empty chunk', [bytes()]],
      ['short first chunk', [bytes(1, 3, 0)]],
      ['continuation first', [bytes(0, 1, 2)]],
      ['reserved flags', [bytes(0x81, 1, 0, 0, 0, 1)]],
      ['first overruns', [bytes(1, 1, 0, 0, 0, 1, 2)]],
      ['first while open', [bytes(1, 3, 0, 0, 0, 1), bytes(1, 1, 0, 0, 0, 1)]],
      ['empty continuation', [bytes(1, 3, 0, 0, 0, 1), bytes(0)]],
      ['continuation overruns', [bytes(1, 3, 0, 0, 0, 1), bytes(0, 2, 3, 4)]],
    ];
    for (const [name, chunks] of cases) {
      const r = new Reassembler(1000);
      const last = chunks.pop() as Uint8Array;
      for (const c of chunks) assert.equal(r.push(c), null, name);
      assert.throws(() => r.push(last), isCode('TS_ERR_FRAME_MALFORMED'), name);
      assert.equal(r.pending, false, `${name}: starts afresh`);
    }
  });

  it('never throws anything but TabshardError on seeded random garbage', () => {
    const rng = createRng(3);
    const r = new Reassembler(1 << 16);
    for (let i = 0; i < 5000; i++) {
      const c = new Uint8Array(rng.int(12));
      for (let j = 0; j < c.length; j++) c[j] = rng.int(4) === 0 ? rng.int(256) : rng.int(2);
      try {
        r.push(c);
      } catch (e) {
        assert.ok(e instanceof TabshardError, String(e));
      }
    }
  });

  it('refuses a chunk size too small to carry data', () => {
    assert.throws(() => new MessageChunker([bytes(1)], 5), isCode('TS_ERR_INVALID_ARGUMENT'));
  });
});

/** Seeded random message bodies of the given sizes. */
function bodies(seed: number, sizes: number[]): Uint8Array[] {
  const rng = createRng(seed);
  return sizes.map((n) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++) m[i] = rng.int(256);
    return m;
  });
}

describe('reassembly for transient receivers', () => {
  const rng = createRng(77);
  const sizes = Array.from({ length: 120 }, (_, i) => (i % 17 === 5 ? 400_000 + rng.int(300_000) : rng.int(20_000)));
  const msgs = bodies(5, sizes);

  it('gives a transient receiver the right bytes across many messages while reusing one buffer', () => {
    const r = new Reassembler();
    const seen = new Set<ArrayBufferLike>();
    let reused = 0;
    for (const [i, m] of msgs.entries()) {
      let out: Uint8Array | null = null;
      for (const c of splitMessage([m], 4096)) out = r.push(c, true);
      assert.ok(out, `message ${i} completes`);
      assert.ok(Buffer.from(out).equals(Buffer.from(m)), `message ${i} (${m.length} bytes)`);
      if (m.length > 4096 - 5) {
        if (seen.has(out.buffer)) reused++;
        seen.add(out.buffer);
      }
    }
    assert.ok(seen.size <= 8, `${seen.size} buffers for ${msgs.length} messages (grows, at least doubling)`);
    assert.ok(reused >= 50);
    const largest = Math.max(...sizes);
    assert.ok(r.retained >= largest && r.retained <= 2 * largest, `retains ${r.retained} for at most ${largest}`);
  });

  it('never overwrites the messages a non-transient receiver was given', () => {
    const r = new Reassembler();
    const kept: Uint8Array[] = [];
    for (const [i, m] of msgs.entries()) {
      // Alternating: transient receivers in between must not touch what the others hold.
      const transient = i % 3 === 1;
      let out: Uint8Array | null = null;
      for (const c of splitMessage([m], 4096)) out = r.push(c, transient);
      assert.ok(out);
      if (!transient) kept.push(out);
      else out.fill(0xaa); // a transient receiver may scribble on its view; it is the buffer's owner meanwhile
    }
    const expected = msgs.filter((_, i) => i % 3 !== 1);
    assert.equal(kept.length, expected.length);
    for (const [i, m] of kept.entries())
      assert.ok(Buffer.from(m).equals(Buffer.from(expected[i])), `kept message ${i}`);
  });

  it('hands the buffer over when the receiver stops being transient during a message', () => {
    const r = new Reassembler();
    const [a, b] = bodies(8, [50_000, 50_000]);
    const ca = splitMessage([a], 1000);
    for (const c of ca.slice(0, -1)) assert.equal(r.push(c, true), null);
    const got = r.push(ca[ca.length - 1], false) as Uint8Array;
    assert.equal(r.retained, 0, 'the receiver owns it now');
    let out: Uint8Array | null = null;
    for (const c of splitMessage([b], 1000)) out = r.push(c, true);
    assert.ok(Buffer.from(got).equals(Buffer.from(a)), 'not overwritten by the next message');
    assert.ok(out && Buffer.from(out).equals(Buffer.from(b)));
  });

  it('keeps nothing after a message above REUSE_MAX and never retains more than REUSE_MAX', () => {
    const r = new Reassembler();
    const feed = (n: number) => {
      let out: Uint8Array | null = null;
      for (const c of splitMessage([new Uint8Array(n).fill(n & 255)], 256 * 1024)) out = r.push(c, true);
      return out as Uint8Array;
    };
    feed(3_000_000);
    const small = r.retained;
    assert.ok(small >= 3_000_000 && small < 3_100_000);
    const huge = feed(REUSE_MAX + 1);
    assert.equal(huge.byteLength, REUSE_MAX + 1);
    assert.equal(r.retained, small, 'the very large message had a buffer of its own');
    feed(REUSE_MAX - 100);
    assert.equal(r.retained, REUSE_MAX);
    r.release();
    assert.equal(r.retained, 0);
  });

  it('keeps no buffer for a receiver that is not transient', () => {
    const r = new Reassembler();
    for (const c of splitMessage([new Uint8Array(100_000)], 1000)) r.push(c, true);
    assert.ok(r.retained > 0);
    for (const c of splitMessage([new Uint8Array(100_000)], 1000)) r.push(c, false);
    assert.equal(r.retained, 0, 'dropped once the receiver is no longer transient');
  });
});

describe('signalling messages', () => {
  it('round-trips offers, candidates, ready and errors', () => {
    const msgs = [
      { type: 'offer', sdp: 'v=0\r\n' },
      { type: 'ready' },
      { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' } },
      { type: 'error', code: 'TS_ERR_FRAME_MALFORMED', message: 'x' },
    ] as const;
    for (const m of msgs) assert.deepEqual(decodeSignal(encodeSignal(m)), m);
  });

  it('refuses malformed and oversized signalling messages with typed errors', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    for (const bad of ['', 'nope', '[1]', 'null', '{"type":"answer"}', '{"type":"candidate","candidate":1}', '{}']) {
      assert.throws(() => decodeSignal(enc(bad)), isCode('TS_ERR_FRAME_MALFORMED'), bad);
    }
    assert.throws(() => decodeSignal(bytes(0xff, 0xfe)), isCode('TS_ERR_FRAME_MALFORMED'));
    assert.throws(() => decodeSignal(new Uint8Array(70_000)), isCode('TS_ERR_FRAME_TOO_LARGE'));
  });
});

/** A channel whose buffered amount the test drains by hand. */
function fakeChannel(evented: boolean) {
  const f = { sent: [] as Uint8Array[], buffered: 0, closes: 0, low: null as null | [number, () => void] };
  const channel: ChunkChannel = {
    send: (c) => {
      f.sent.push(c);
      f.buffered += c.byteLength;
    },
    get bufferedAmount() {
      return f.buffered;
    },
    onceLow: evented
      ? (threshold, cb) => {
          f.low = [threshold, cb];
        }
      : undefined,
    close: () => f.closes++,
  };
  const drain = () => {
    f.buffered = 0;
    const low = f.low;
    f.low = null;
    low?.[1]();
  };
  return { f, channel, drain };
}

describe('ChunkedConn send queue', () => {
  for (const evented of [false, true]) {
    it(`stops at the high-water mark and resumes below the low one (${evented ? 'event' : 'polling'})`, async () => {
      const { f, channel, drain } = fakeChannel(evented);
      const conn = new ChunkedConn(channel, {
        kind: 'webrtc',
        remote: 'fake',
        chunkSize: 100,
        highWaterMark: 1000,
        lowWaterMark: 300,
        pollMs: 1,
      });
      const msg = Uint8Array.from({ length: 5000 }, (_, i) => i * 7);
      let sentCalls = 0;
      conn.send([msg.subarray(0, 1234), msg.subarray(1234)], () => sentCalls++);
      conn.send([Uint8Array.of(1)]);
      assert.equal(f.sent.length, 10, 'stopped at the high-water mark');
      while (f.sent.length < chunkCount(5000, 100) + 1) {
        const before = f.sent.length;
        drain();
        if (!evented) await new Promise((r) => setTimeout(r, 5));
        assert.ok(f.sent.length > before, 'resumed');
      }
      await Promise.resolve();
      assert.equal(sentCalls, 1);
      const r = new Reassembler();
      const got = f.sent.map((c) => r.push(c)).filter((m) => m !== null);
      assert.deepEqual(got, [msg, Uint8Array.of(1)]);
      conn.send([new Uint8Array(2000)]);
      conn.close();
      conn.close();
      assert.equal(f.closes, 1);
      const n = f.sent.length;
      drain();
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(f.sent.length, n, 'nothing sent after close');
    });
  }

  it('closes with the typed error of a malformed or oversized incoming chunk', () => {
    const { channel } = fakeChannel(false);
    const conn = new ChunkedConn(channel, { kind: 'webrtc', remote: 'fake', maxMessage: 10 });
    let err: TabshardError | undefined;
    conn.onclose = (e) => {
      err = e;
    };
    conn.receive(bytes(1, 11, 0, 0, 0));
    assert.equal(err?.code, 'TS_ERR_FRAME_TOO_LARGE');
    assert.equal(conn.closed, true);
  });
});
