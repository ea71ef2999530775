/**
 * WebRTC transport tests: the shared compliance suite over @roamhq/wrtc with the in-memory
 * network as signalling, plus handshake failures (malformed signalling, nothing listening,
 * a listener that never answers).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import SimplePeer from 'simple-peer';
import { TabshardError } from '../../shared/errors.ts';
import { collect, connectPair, runTransportCompliance } from '../../shared/transport/compliance.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';
import { dialPeer, type PeerConnOptions } from '../../shared/transport/webrtc-peer.ts';
import { WebRtcListener, type WrtcImpl } from './webrtc.ts';

const impl = wrtc as unknown as WrtcImpl;
let seq = 0;

/**
 * The dialing side, built as client/transports/webrtc.ts builds `WebRtcDialer` (server/ may
 * not import client/): `dialPeer` over a signalling dialer with simple-peer passed in.
 */
function webRtcDialer(opts: Omit<PeerConnOptions, 'Peer'> & { signalling: Dialer }): Dialer {
  return { kind: 'webrtc', dial: (address) => dialPeer(opts.signalling, address, { ...opts, Peer: SimplePeer }) };
}

/** A WebRTC listener over a fresh memory network, and a dialer for it. */
function setup(maxMessage?: number) {
  const net = new MemoryNetwork({ seed: ++seq, maxDelay: 1 });
  const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl, maxMessage });
  const dialer = webRtcDialer({ signalling: net.dialer(), wrtc: impl, maxMessage });
  return { net, listener, dialer };
}

runTransportCompliance('webrtc', {
  largeBytes: 8 * 1024 * 1024,
  async makePair({ maxMessage }) {
    const { listener, dialer } = setup(maxMessage);
    return connectPair(listener, dialer);
  },
});

const isCode = (code: string) => (e: unknown) => e instanceof TabshardError && e.code === code;

describe('webrtc handshake failures', () => {
  const listeners: WebRtcListener[] = [];
  after(async () => {
    for (const l of listeners) await l.close();
  });

  it('closes a signalling connection that sends malformed JSON with a coded error and keeps accepting', async () => {
    const { net, listener, dialer } = setup();
    listeners.push(listener);
    const errors: TabshardError[] = [];
    listener.onerror = (e) => errors.push(e);
    const bad = [new TextEncoder().encode('{"type":"offer"'), new TextEncoder().encode('{"type":"answer"}')];
    for (const msg of bad) {
      const raw = await net.dialer().dial('memory://sig');
      const closed = new Promise<TabshardError | undefined>((resolve) => {
        raw.onclose = resolve;
      });
      raw.send([msg]);
      const err = await closed;
      assert.equal(err?.code, 'TS_ERR_FRAME_MALFORMED');
    }
    assert.deepEqual(
      errors.map((e) => e.code),
      ['TS_ERR_FRAME_MALFORMED', 'TS_ERR_FRAME_MALFORMED'],
    );
    const accepted = new Promise<Conn>((resolve) => {
      listener.onconnection = resolve;
    });
    const client = await dialer.dial(listener.address);
    const server = await accepted;
    const got = collect(server, 1);
    client.send([Uint8Array.of(7)]);
    assert.deepEqual((await got)[0], Uint8Array.of(7));
    client.close();
  });

  it('rejects a dial to nowhere with TS_ERR_CONNECT_FAILED', async () => {
    const { dialer } = setup();
    await assert.rejects(dialer.dial('webrtc+memory://nobody'), isCode('TS_ERR_CONNECT_FAILED'));
  });

  it('rejects with TS_ERR_CONNECT_FAILED when the listener never answers within the timeout', async () => {
    const net = new MemoryNetwork({ seed: 99 });
    const mute = net.listen('mute');
    const held: Conn[] = [];
    mute.onconnection = (c) => held.push(c);
    const dialer = webRtcDialer({ signalling: net.dialer(), wrtc: impl, timeoutMs: 300 });
    await assert.rejects(dialer.dial('memory://mute'), isCode('TS_ERR_CONNECT_FAILED'));
    assert.ok(held.every((c) => c.closed));
  });

  it('refuses a received message above the maximum with TS_ERR_FRAME_TOO_LARGE', async () => {
    const net = new MemoryNetwork({ seed: 5, maxDelay: 1 });
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl, maxMessage: 1000 });
    listeners.push(listener);
    const accepted = new Promise<Conn>((resolve) => {
      listener.onconnection = resolve;
    });
    const client = await webRtcDialer({ signalling: net.dialer(), wrtc: impl }).dial(listener.address);
    const server = await accepted;
    const serverClosed = new Promise<TabshardError | undefined>((resolve) => {
      server.onclose = resolve;
    });
    const clientClosed = new Promise<void>((resolve) => {
      client.onclose = () => resolve();
    });
    client.send([new Uint8Array(5000)]);
    assert.equal((await serverClosed)?.code, 'TS_ERR_FRAME_TOO_LARGE');
    await clientClosed;
  });

  it('closes the connections it accepted when the listener closes', async () => {
    const { listener, dialer } = setup();
    const accepted: Conn[] = [];
    const both = new Promise<void>((resolve) => {
      listener.onconnection = (c) => {
        accepted.push(c);
        if (accepted.length === 2) resolve();
      };
    });
    const clients = [await dialer.dial(listener.address), await dialer.dial(listener.address)];
    const closed = clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.onclose = () => resolve();
        }),
    );
    await both;
    accepted[0].close(); // one already closed: closing the listener must not trip over it
    await listener.close();
    await Promise.all(closed);
    assert.ok(accepted.every((c) => c.closed));
  });
});
