/**
 * bench/kv's WebRTC floor: a plain data channel to `listenBareWebRtc` answers every request's
 * byte count with the reply's, for counts below, at and far above one 256 KiB piece, one
 * exchange after another.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { BareWebRtcExchange, listenBareWebRtc } from './bare-webrtc.ts';

describe('bench/kv WebRTC floor', () => {
  let server: Server | undefined;
  after(() => server?.close());

  it('answers request bytes with reply bytes over a plain data channel', async () => {
    const address = await new Promise<string>((resolve) => {
      server = listenBareWebRtc(resolve);
    });
    assert.match(address, /^webrtc\+tcp:\/\/127\.0\.0\.1:\d+$/);
    for (const [request, reply] of [
      [4160, 32],
      [32, 256 * 1024],
      [3 * 1024 * 1024 + 7, 1_000_003],
    ]) {
      const ex = await BareWebRtcExchange.open(address, request, reply);
      try {
        for (let i = 0; i < 3; i++) await ex.call();
      } finally {
        ex.close();
      }
    }
  });
});
