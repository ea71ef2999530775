/**
 * WebSocket transport tests: the shared compliance suite (the `ws` package on both ends), close
 * frames that carry error codes, and the receive-side checks (text frames, oversized messages).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { WsDialer } from '../../client/transports/ws.ts';
import { TabshardError } from '../../shared/errors.ts';
import { connectPair, runTransportCompliance } from '../../shared/transport/compliance.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { closeFrameFor, errorFromClose } from '../../shared/transport/websocket.ts';
import { wsListen } from './ws.ts';

runTransportCompliance('ws', {
  async makePair({ maxMessage }) {
    return connectPair(await wsListen({ maxMessage, path: '/t' }), new WsDialer(WebSocket, { maxMessage }));
  },
});

const closedWith = (conn: Conn) =>
  new Promise<TabshardError | undefined>((resolve) => {
    conn.onclose = resolve;
  });

describe('ws transport', () => {
  it('carries the error code of a close to the peer', async () => {
    const pair = await connectPair(await wsListen(), new WsDialer(WebSocket));
    try {
      const closed = closedWith(pair.client);
      pair.server.close(new TabshardError('TS_ERR_UNKNOWN_TABLE', 'job 0 table 9'));
      const err = await closed;
      assert.equal(err?.code, 'TS_ERR_UNKNOWN_TABLE');
      assert.equal(err?.message, 'unknown table: job 0 table 9');
    } finally {
      await pair.dispose();
    }
  });

  it('maps close frames both ways, cutting long reasons on a character boundary', () => {
    assert.deepEqual(closeFrameFor(), { code: 1000, reason: '' });
    const long = closeFrameFor(new TabshardError('TS_ERR_INTERNAL', 'é'.repeat(200)));
    assert.equal(long.code, 4000);
    assert.ok(new TextEncoder().encode(long.reason).byteLength <= 123);
    assert.ok(!long.reason.includes('\ufffd'));
    assert.equal(errorFromClose(4000, long.reason)?.code, 'TS_ERR_INTERNAL');
    assert.equal(errorFromClose(1000, ''), undefined);
    assert.equal(errorFromClose(1006, '')?.code, 'TS_ERR_TRANSPORT_CLOSED');
    assert.equal(errorFromClose(4000, 'TS_ERR_NOPE')?.code, 'TS_ERR_TRANSPORT_CLOSED');
  });

  it('closes with TS_ERR_FRAME_MALFORMED on a text message', async () => {
    const listener = await wsListen();
    const accepted = new Promise<Conn>((resolve) => {
      listener.onconnection = resolve;
    });
    const raw = new WebSocket(listener.address);
    raw.on('error', () => {});
    try {
      await new Promise((resolve) => raw.once('open', resolve));
      const server = await accepted;
      const closed = closedWith(server);
      const peerSaw = new Promise<{ code: number; reason: string }>((resolve) =>
        raw.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      raw.send('hello');
      assert.equal((await closed)?.code, 'TS_ERR_FRAME_MALFORMED');
      const frame = await peerSaw;
      assert.equal(frame.code, 4000);
      assert.match(frame.reason, /^TS_ERR_FRAME_MALFORMED/);
    } finally {
      raw.terminate();
      await listener.close();
    }
  });

  it('refuses a received message above the maximum, and an unreachable address', async () => {
    const pair = await connectPair(await wsListen({ maxMessage: 1 << 20 }), new WsDialer(WebSocket));
    try {
      const closed = closedWith(pair.server);
      pair.client.send([new Uint8Array((1 << 20) + 1)]);
      assert.ok(await closed); // closed by ws's maxPayload (1009) or our check, never delivered
    } finally {
      await pair.dispose();
    }
    const dialer = new WsDialer(WebSocket, { timeoutMs: 2000 });
    await assert.rejects(
      dialer.dial('ws://127.0.0.1:1/x'),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_CONNECT_FAILED',
    );
    await assert.rejects(
      dialer.dial('tcp://127.0.0.1:1'),
      (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
    );
  });
});
