/**
 * The transport compliance suite (test support). Every transport implementation calls
 * `runTransportCompliance` from its own test file with a factory for a connected pair, so all
 * transports are held to one contract: order, boundaries, gather writes, large messages,
 * `onSent`, close propagation and the size limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../errors.ts';
import { createRng } from '../rng.ts';
import type { Conn, Dialer, Listener } from './types.ts';

export interface ConnPair {
  client: Conn;
  server: Conn;
  /** Releases everything the pair holds (listeners, peers); called after every test. */
  dispose(): Promise<void>;
}

export interface ComplianceOptions {
  /** Builds a connected pair; `maxMessage` is the limit both ends must enforce. */
  makePair(opts: { maxMessage: number }): Promise<ConnPair>;
  /** Size of the "large" message; WebRTC over loopback is slower, so it may use less. */
  largeBytes?: number;
}

/** Connects `dialer` to `listener` and returns both ends; `dispose` closes them and the listener. */
export async function connectPair(listener: Listener, dialer: Dialer): Promise<ConnPair> {
  const accepted = new Promise<Conn>((resolve) => {
    listener.onconnection = resolve;
  });
  const client = await dialer.dial(listener.address);
  const server = await accepted;
  return {
    client,
    server,
    async dispose() {
      client.close();
      server.close();
      await listener.close();
    },
  };
}

/** Resolves with the next `n` messages received on `conn`. */
export function collect(conn: Conn, n: number): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const got: Uint8Array[] = [];
    if (n === 0) resolve(got);
    conn.onmessage = (m) => {
      got.push(m);
      if (got.length === n) resolve(got);
    };
    conn.onclose = (err) => reject(err ?? new Error('closed before all messages arrived'));
  });
}

function pattern(seed: number, n: number): Uint8Array {
  const rng = createRng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

export function runTransportCompliance(name: string, opts: ComplianceOptions): void {
  const large = opts.largeBytes ?? 8 * 1024 * 1024;
  const maxMessage = 64 * 1024 * 1024;
  const withPair = async (fn: (p: ConnPair) => Promise<void>): Promise<void> => {
    const pair = await opts.makePair({ maxMessage });
    try {
      await fn(pair);
    } finally {
      await pair.dispose();
    }
  };

  describe(`transport compliance: ${name}`, () => {
    it('keeps order and boundaries of many messages of random sizes, including empty', () =>
      withPair(async ({ client, server }) => {
        const rng = createRng(7);
        const sizes = Array.from({ length: 300 }, (_, i) => (i === 0 ? 0 : rng.int(i % 10 === 0 ? 300_000 : 2000)));
        const done = collect(server, sizes.length);
        for (let i = 0; i < sizes.length; i++) client.send([pattern(i, sizes[i])]);
        const got = await done;
        for (let i = 0; i < got.length; i++) assert.deepEqual(got[i], pattern(i, sizes[i]), `message ${i}`);
      }));

    it('concatenates the parts of a gathered send into one message', () =>
      withPair(async ({ client, server }) => {
        const done = collect(server, 2);
        client.send([Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3), pattern(1, 70_000)]);
        client.send([Uint8Array.of(9)]);
        const [m, n] = await done;
        assert.deepEqual(m.subarray(0, 3), Uint8Array.of(1, 2, 3));
        assert.deepEqual(m.subarray(3), pattern(1, 70_000));
        assert.deepEqual(n, Uint8Array.of(9));
      }));

    it(`moves ${large >> 20} MiB messages both ways at once without corruption`, () =>
      withPair(async ({ client, server }) => {
        const toServer = collect(server, 2);
        const toClient = collect(client, 2);
        const a = pattern(11, large);
        const b = pattern(12, large);
        client.send([a]);
        server.send([b]);
        client.send([a.subarray(0, 1000)]);
        server.send([b.subarray(0, 1000)]);
        const [s, c] = await Promise.all([toServer, toClient]);
        assert.ok(Buffer.from(s[0]).equals(Buffer.from(a)));
        assert.ok(Buffer.from(c[0]).equals(Buffer.from(b)));
        assert.equal(s[1].byteLength, 1000);
        assert.equal(c[1].byteLength, 1000);
      }));

    it('calls onSent once, after which the sender may reuse its buffer', () =>
      withPair(async ({ client, server }) => {
        const buf = pattern(3, 600_000);
        const copy = buf.slice();
        const got = collect(server, 1);
        let calls = 0;
        await new Promise<void>((resolve) =>
          client.send([buf], () => {
            calls++;
            buf.fill(0);
            resolve();
          }),
        );
        const [m] = await got;
        assert.equal(calls, 1);
        assert.ok(Buffer.from(m).equals(Buffer.from(copy)));
      }));

    it('answers many request/response round trips in both directions', () =>
      withPair(async ({ client, server }) => {
        server.onmessage = (m) => server.send([m, Uint8Array.of(255)]);
        for (let i = 0; i < 200; i++) {
          const reply = collect(client, 1);
          client.send([Uint8Array.of(i & 255, 1, 2)]);
          const [r] = await reply;
          assert.deepEqual(r, Uint8Array.of(i & 255, 1, 2, 255));
        }
      }));

    it('refuses a message above the maximum with TS_ERR_MESSAGE_TOO_LARGE and stays usable', () =>
      withPair(async ({ client, server }) => {
        assert.throws(
          () => client.send([new Uint8Array(maxMessage + 1)]),
          (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_MESSAGE_TOO_LARGE',
        );
        const got = collect(server, 1);
        client.send([Uint8Array.of(42)]);
        assert.deepEqual((await got)[0], Uint8Array.of(42));
      }));

    for (const closer of ['client', 'server'] as const) {
      it(`propagates a close by the ${closer} to the other end; later sends are ignored`, () =>
        withPair(async (pair) => {
          const [a, b] = closer === 'client' ? [pair.client, pair.server] : [pair.server, pair.client];
          const otherClosed = new Promise<void>((resolve) => {
            b.onclose = () => resolve();
          });
          let localCloses = 0;
          a.onclose = () => localCloses++;
          a.close();
          a.close();
          await otherClosed;
          assert.equal(a.closed, true);
          assert.equal(b.closed, true);
          assert.equal(localCloses, 1);
          let sentCalled = false;
          a.send([Uint8Array.of(1)], () => {
            sentCalled = true;
          });
          b.send([Uint8Array.of(1)]);
          assert.equal(sentCalled, false);
        }));
    }
  });
}
