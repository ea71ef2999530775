import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { tcpDialer } from '../../client/transports/tcp.ts';
import { connectPair, runTransportCompliance } from '../../shared/transport/compliance.ts';
import { tcpListen } from './tcp.ts';

runTransportCompliance('tcp', {
  makePair: async ({ maxMessage }) => connectPair(await tcpListen({ maxMessage }), tcpDialer({ maxMessage })),
});

describe('tcp transport against a raw socket', () => {
  it('closes a connection that declares a huge length with TS_ERR_FRAME_TOO_LARGE, without allocating it', async () => {
    const listener = await tcpListen({ maxMessage: 1 << 20 });
    const closed = new Promise<string | undefined>((resolve) => {
      listener.onconnection = (c) => {
        c.onmessage = () => assert.fail('no message expected');
        c.onclose = (err) => resolve(err?.code);
      };
    });
    const port = Number(listener.address.split(':').pop());
    const raw = connect({ host: '127.0.0.1', port });
    const before = process.memoryUsage().arrayBuffers;
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    assert.equal(await closed, 'TS_ERR_FRAME_TOO_LARGE');
    assert.ok(process.memoryUsage().arrayBuffers - before < 8 << 20);
    raw.destroy();
    await listener.close();
  });

  it('reassembles a length prefix split byte by byte across writes', async () => {
    const listener = await tcpListen();
    const got = new Promise<Uint8Array>((resolve) => {
      listener.onconnection = (c) => {
        c.onmessage = resolve;
      };
    });
    const port = Number(listener.address.split(':').pop());
    const raw = connect({ host: '127.0.0.1', port, noDelay: true });
    const bytes = [3, 0, 0, 0, 7, 8, 9];
    for (const b of bytes) {
      raw.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await got, Uint8Array.of(7, 8, 9));
    raw.destroy();
    await listener.close();
  });
});
