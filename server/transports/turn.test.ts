/**
 * WebRTC through a real TURN server (coturn, `use-auth-secret`): a dialer allowed only relayed
 * candidates (what a tab behind a NAT that blocks UDP to the nodes gets) connects to a node's
 * WebRTC listener with credentials minted from the shared secret, moves messages both ways and
 * reports its route as `turn`; a direct connection reports `direct`; credentials past their
 * expiry, or minted from another secret, are refused by the TURN server (the dial fails).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import SimplePeer from 'simple-peer';
import { startCoturn } from '../../e2e/coturn.ts';
import { TabshardError } from '../../shared/errors.ts';
import { collect, connectPair } from '../../shared/transport/compliance.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { dialPeer } from '../../shared/transport/webrtc-peer.ts';
import { IceConfig, turnCredential } from '../auth/turn.ts';
import { WebRtcListener, type WrtcImpl } from './webrtc.ts';

const impl = wrtc as unknown as WrtcImpl;
const SECRET = 'turn-test-secret';

describe('WebRTC through coturn', () => {
  let turn: Awaited<ReturnType<typeof startCoturn>>;
  before(async () => {
    turn = await startCoturn(SECRET);
  });
  after(async () => {
    await turn?.stop();
  });

  /** A node-side listener (host candidates only) and a dialer with `config`. */
  function setup(seed: number, config?: RTCConfiguration, timeoutMs = 5000) {
    const net = new MemoryNetwork({ seed, maxDelay: 1 });
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl });
    const dialer = {
      kind: 'webrtc' as const,
      dial: (a: string) => dialPeer(net.dialer(), a, { wrtc: impl, Peer: SimplePeer, config, timeoutMs }),
    };
    return { listener, dialer };
  }

  async function exchange(client: Conn, server: Conn): Promise<void> {
    const got = collect(server, 2);
    const back = collect(client, 1);
    client.send([new Uint8Array(100_000).fill(7)]);
    client.send([Uint8Array.of(1)]);
    server.send([Uint8Array.of(2)]);
    const [big, one] = await got;
    assert.equal(big.byteLength, 100_000);
    assert.ok(big.every((x) => x === 7));
    assert.deepEqual(one, Uint8Array.of(1));
    assert.deepEqual((await back)[0], Uint8Array.of(2));
  }

  it('a relay-only dialer connects through TURN with minted credentials, and says so', async () => {
    const ice = new IceConfig([turn.url], SECRET);
    const { listener, dialer } = setup(1, { iceServers: ice.servers('w1'), iceTransportPolicy: 'relay' });
    const pair = await connectPair(listener, dialer);
    try {
      await exchange(pair.client, pair.server);
      assert.equal(await pair.client.route?.(), 'turn');
      assert.equal(await pair.server.route?.(), 'turn', 'the node sees the relayed candidate too');
    } finally {
      await pair.dispose();
      await listener.close();
    }
  });

  it('a dialer with host candidates connects directly, and says so', async () => {
    const { listener, dialer } = setup(2);
    const pair = await connectPair(listener, dialer);
    try {
      await exchange(pair.client, pair.server);
      assert.equal(await pair.client.route?.(), 'direct');
    } finally {
      await pair.dispose();
      await listener.close();
    }
  });

  it('the TURN server refuses credentials past their expiry, or of another secret: the dial fails', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    for (const cred of [turnCredential(SECRET, 'late', past), turnCredential('not-the-secret', 'w', past + 3600)]) {
      // Refused at the TURN server, the dialer gathers no candidate: the dial fails at its deadline.
      const { listener, dialer } = setup(
        3,
        { iceServers: [{ urls: turn.url, ...cred }], iceTransportPolicy: 'relay' },
        1500,
      );
      try {
        await assert.rejects(
          dialer.dial(listener.address),
          (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_CONNECT_FAILED',
        );
      } finally {
        await listener.close();
      }
    }
  });
});
