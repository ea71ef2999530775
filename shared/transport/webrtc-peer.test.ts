/**
 * `openPeerConn` against a stand-in for simple-peer (deterministic, no WebRTC stack): messages
 * the channel delivers before the peer counts as connected reach the `Conn`'s receiver after it
 * had its turn to set `onmessage`, in order, ahead of later ones; chunks go to the channel
 * itself, capped at its negotiated maximum message; a text message closes the connection.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type SimplePeer from 'simple-peer';
import { splitMessage } from './chunker.ts';
import { MemoryNetwork } from './memory.ts';
import type { Conn } from './types.ts';
import { openPeerConn } from './webrtc-peer.ts';

/** What these tests need of simple-peer: events, `_channel`, `_pc`, and `_onChannelMessage` per message. */
class FakePeer extends EventEmitter {
  static last: FakePeer | null = null;
  readonly sent: Uint8Array[] = [];
  readonly _channel = {
    bufferedAmount: 0,
    send: (c: Uint8Array) => {
      this.sent.push(c.slice());
    },
  };
  readonly _pc = { sctp: { maxMessageSize: 1000 } };
  destroyed = false;
  constructor() {
    super();
    FakePeer.last = this;
  }
  /** What simple-peer's channel `onmessage` does: hand the event to `this._onChannelMessage`. */
  deliver(data: unknown): void {
    (this as unknown as { _onChannelMessage(ev: { data: unknown }): void })._onChannelMessage({ data });
  }
  signal(): void {}
  destroy(): void {
    this.destroyed = true;
  }
}

const asBuffer = (c: Uint8Array): ArrayBuffer => c.slice().buffer as ArrayBuffer;

async function open(): Promise<{ conn: Conn; peer: FakePeer; early: Uint8Array[] }> {
  const net = new MemoryNetwork({ seed: 1 });
  const l = net.listen('sig');
  const sigAccepted = new Promise<Conn>((resolve) => {
    l.onconnection = resolve;
  });
  const sig = await net.dialer().dial('memory://sig');
  await sigAccepted;
  const pending = openPeerConn(sig, false, 'fake', { Peer: FakePeer as unknown as typeof SimplePeer });
  const peer = FakePeer.last as FakePeer;
  // Three messages (one of them in two chunks) arrive before the peer counts as connected.
  const early = [Uint8Array.of(1), new Uint8Array(3000).fill(2), Uint8Array.of(3)];
  for (const m of early) for (const c of splitMessage([m], 2048)) peer.deliver(asBuffer(c));
  peer.emit('connect');
  return { conn: await pending, peer, early };
}

describe('openPeerConn over simple-peer', () => {
  it('delivers messages that came before connect, in order, once the receiver is set, then later ones', async () => {
    const { conn, peer, early } = await open();
    const got: Uint8Array[] = [];
    let waiter: { n: number; resolve: () => void } | null = null;
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        waiter = { n, resolve };
      });
    // Set after `open` resolved, as any owner of a fresh Conn does: nothing was lost meanwhile.
    conn.onmessage = (m) => {
      got.push(m.slice());
      if (waiter && got.length === waiter.n) waiter.resolve();
    };
    const four = until(4);
    peer.deliver(asBuffer(splitMessage([Uint8Array.of(4)], 100)[0])); // queued behind the early ones
    await four;
    const five = until(5);
    peer.deliver(asBuffer(splitMessage([Uint8Array.of(5)], 100)[0])); // delivered at once
    await five;
    assert.deepEqual(got, [...early, Uint8Array.of(4), Uint8Array.of(5)]);
    conn.close();
  });

  it('sends chunks on the channel itself, capped at its negotiated maximum message', async () => {
    const { conn, peer } = await open();
    conn.send([new Uint8Array(2500).fill(9)]);
    assert.deepEqual(
      peer.sent.map((c) => c.byteLength),
      [1000, 1000, 507],
    );
    conn.close();
    assert.equal(peer.destroyed, true);
  });

  it('closes on a text message with TS_ERR_FRAME_MALFORMED', async () => {
    const { conn, peer } = await open();
    const closed = new Promise<string | undefined>((resolve) => {
      conn.onclose = (e) => resolve(e?.code);
    });
    let n = 0;
    const earlyDone = new Promise<void>((resolve) => {
      conn.onmessage = () => ++n === 3 && resolve();
    });
    await earlyDone;
    peer.deliver('hello');
    assert.equal(await closed, 'TS_ERR_FRAME_MALFORMED');
  });
});
