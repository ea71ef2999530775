import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTransportCompliance } from './compliance.ts';
import { MemoryNetwork } from './memory.ts';
import type { Conn } from './types.ts';

async function pair(net: MemoryNetwork, name: string) {
  const listener = net.listen(name);
  const accepted = new Promise<Conn>((resolve) => {
    listener.onconnection = resolve;
  });
  const client = await net.dialer().dial(listener.address);
  return { client, server: await accepted, listener };
}

runTransportCompliance('memory', {
  async makePair({ maxMessage }) {
    const net = new MemoryNetwork({ seed: 3, maxMessage });
    const { client, server, listener } = await pair(net, 'a');
    return {
      client,
      server,
      async dispose() {
        client.close();
        await listener.close();
      },
    };
  },
});

describe('seeded memory network', () => {
  async function trace(seed: number): Promise<string[]> {
    const net = new MemoryNetwork({ seed, maxDelay: 50 });
    const a = await pair(net, 'a');
    const b = await pair(net, 'b');
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      const on = (tag: string) => (m: Uint8Array) => {
        order.push(`${tag}${m[0]}`);
        if (order.length === 20) resolve();
      };
      a.server.onmessage = on('a');
      b.server.onmessage = on('b');
    });
    for (let i = 0; i < 10; i++) {
      a.client.send([Uint8Array.of(i)]);
      b.client.send([Uint8Array.of(i)]);
    }
    await done;
    return order;
  }

  it('replays the same interleaving for the same seed, and reorders across connections only', async () => {
    const t1 = await trace(5);
    assert.deepEqual(await trace(5), t1);
    for (const tag of ['a', 'b']) {
      const mine = t1.filter((x) => x[0] === tag).map((x) => Number(x.slice(1)));
      assert.deepEqual(
        mine,
        [...mine].sort((x, y) => x - y),
        'order within a connection is kept',
      );
    }
    assert.notDeepEqual(t1, t1.slice().sort(), 'connections interleave');
  });

  it('drops connections at the configured rate, closing both ends with TS_ERR_TRANSPORT_CLOSED', async () => {
    const net = new MemoryNetwork({ seed: 9, dropRate: 0.1 });
    const { client, server } = await pair(net, 'a');
    const closed = new Promise<string | undefined>((resolve) => {
      server.onclose = (e) => resolve(e?.code);
    });
    for (let i = 0; i < 100 && !client.closed; i++) client.send([Uint8Array.of(i)]);
    assert.equal(client.closed, true);
    assert.equal(await closed, 'TS_ERR_TRANSPORT_CLOSED');
  });
});
