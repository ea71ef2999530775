/**
 * WebRTC transport tests: the shared compliance suite over @roamhq/wrtc with the in-memory
 * network as signalling, plus handshake failures (malformed signalling, nothing listening,
 * a listener that never answers), the data path's assumptions about @roamhq/wrtc (send copies
 * the bytes before it returns; a chunk size above the negotiated maximum is capped) and
 * transient receivers (views of a reused buffer) next to ones that keep their messages, and the
 * listener's caps on live peer connections and handshakes in progress (refused with an error
 * signal TS_ERR_RATE_LIMITED, real peers at a cap of 2).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import SimplePeer from 'simple-peer';
import { TabshardError } from '../../shared/errors.ts';
import { createRng } from '../../shared/rng.ts';
import { collect, connectPair, runTransportCompliance } from '../../shared/transport/compliance.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';
import { decodeSignal, dialPeer, type PeerConnOptions } from '../../shared/transport/webrtc-peer.ts';
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

/** Resolves once `pc` has gathered its host candidates (no trickle). */
function gathered(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
}

describe('webrtc data path', () => {
  it('never asks @roamhq/wrtc for a description during a handshake (reading one can crash it: wrtc-guard.ts)', async () => {
    // An implementation that counts reads of the native description getters, then guarded as
    // every handshake guards its implementation.
    let reads = 0;
    const Native = impl.RTCPeerConnection as unknown as new (c?: RTCConfiguration) => RTCPeerConnection;
    function Counting(config?: RTCConfiguration): RTCPeerConnection {
      const pc = new Native(config);
      return new Proxy(pc, {
        get(t, p) {
          if (p === 'localDescription' || p === 'remoteDescription') reads++;
          const v = Reflect.get(t, p, t);
          return typeof v === 'function' ? v.bind(t) : v;
        },
        set: (t, p, v) => Reflect.set(t, p, v, t),
      });
    }
    const counting = { ...impl, RTCPeerConnection: Counting } as unknown as WrtcImpl;
    const net = new MemoryNetwork({ seed: 41, maxDelay: 1 });
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: counting });
    const pair = await connectPair(listener, webRtcDialer({ signalling: net.dialer(), wrtc: counting }));
    try {
      const got = collect(pair.server, 1);
      pair.client.send([Uint8Array.of(5)]);
      assert.deepEqual((await got)[0], Uint8Array.of(5));
      assert.equal(reads, 0, 'native description reads');
      // Unguarded, simple-peer reads them: the count above measures something.
      const raw = new (counting.RTCPeerConnection as unknown as new () => RTCPeerConnection)();
      void raw.localDescription;
      raw.close();
      assert.equal(reads, 1);
    } finally {
      await pair.dispose();
      await listener.close();
    }
  });

  it('@roamhq/wrtc RTCDataChannel.send copies the bytes before it returns (what chunk scratch reuse relies on)', async () => {
    const W = wrtc as unknown as { RTCPeerConnection: typeof RTCPeerConnection };
    const a = new W.RTCPeerConnection({ iceServers: [] });
    const b = new W.RTCPeerConnection({ iceServers: [] });
    try {
      const dc = a.createDataChannel('copy');
      const incoming = new Promise<RTCDataChannel>((resolve) => {
        b.ondatachannel = (e) => resolve(e.channel);
      });
      await a.setLocalDescription(await a.createOffer());
      await gathered(a);
      await b.setRemoteDescription(a.localDescription as RTCSessionDescriptionInit);
      await b.setLocalDescription(await b.createAnswer());
      await gathered(b);
      await a.setRemoteDescription(b.localDescription as RTCSessionDescriptionInit);
      const rc = await incoming;
      rc.binaryType = 'arraybuffer';
      await new Promise((resolve) => {
        if (dc.readyState === 'open') resolve(null);
        else dc.onopen = resolve;
      });
      const n = 200;
      const got = new Promise<Uint8Array[]>((resolve) => {
        const out: Uint8Array[] = [];
        rc.onmessage = (e) => {
          out.push(new Uint8Array(e.data as ArrayBuffer));
          if (out.length === n) resolve(out);
        };
      });
      // One buffer refilled after every send, with a backlog of several MiB queued natively.
      const buf = new Uint8Array(64 * 1024);
      for (let i = 0; i < n; i++) {
        buf.fill(i & 255);
        dc.send(buf);
      }
      buf.fill(0xee);
      const msgs = await got;
      msgs.forEach((m, i) => {
        assert.equal(m.byteLength, buf.byteLength);
        assert.ok(
          m.every((x) => x === (i & 255)),
          `message ${i} kept the bytes it was sent with`,
        );
      });
    } finally {
      a.close();
      b.close();
    }
  });

  it('caps the chunk size at the negotiated maximum message (a larger one would kill the channel)', async () => {
    const net = new MemoryNetwork({ seed: 31, maxDelay: 1 });
    const tuning = { chunkSize: 1024 * 1024 };
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl, ...tuning });
    const pair = await connectPair(listener, webRtcDialer({ signalling: net.dialer(), wrtc: impl, ...tuning }));
    try {
      const big = new Uint8Array(3 * 1024 * 1024).fill(3);
      const got = collect(pair.server, 2);
      pair.client.send([big]);
      pair.client.send([Uint8Array.of(1)]);
      const [m, n] = await got;
      assert.ok(Buffer.from(m).equals(Buffer.from(big)));
      assert.deepEqual(n, Uint8Array.of(1));
    } finally {
      await pair.dispose();
    }
  });

  it('delivers, in order, what the dialer sent as soon as its dial resolved, on every one of 60 connections', async () => {
    // Without the listener's `ready` (PROTOCOL.md §2.2), @roamhq/wrtc handed the listener the
    // first messages of about 1 connection in 10 out of order: 60 in a row would all pass by
    // chance about once in 500 runs.
    const { listener, dialer } = setup();
    const misordered: number[] = [];
    try {
      for (let c = 0; c < 60; c++) {
        const accepted = new Promise<Conn>((resolve) => {
          listener.onconnection = resolve;
        });
        const client = await dialer.dial(listener.address);
        const n = c === 0 ? 50 : 8;
        for (let i = 0; i < n; i++) client.send([Uint8Array.of(i), new Uint8Array(c === 0 ? i * 7000 : 0)]);
        const server = await accepted;
        const got = await collect(server, n);
        if (got.some((m, i) => m[0] !== i || m.byteLength !== 1 + (c === 0 ? i * 7000 : 0))) misordered.push(c);
        // One peer connection at a time, each torn down on both ends before the next: @roamhq/wrtc
        // once died natively (no error, the process gone) while 60 were opened and closed at once.
        const gone = new Promise<void>((resolve) => {
          server.onclose = () => resolve();
        });
        client.close();
        await gone;
      }
      assert.deepEqual(misordered, [], 'connections whose first messages arrived out of order');
    } finally {
      await listener.close();
    }
  });

  it('gives a transient receiver the right bytes across many messages, and a keeping one messages never overwritten', async () => {
    const { listener, dialer } = setup();
    const pair = await connectPair(listener, dialer);
    try {
      const rng = createRng(13);
      const sizes = Array.from({ length: 160 }, (_, i) =>
        i % 9 === 0 ? 300_000 + rng.int(1_500_000) : rng.int(i % 2 ? 600_000 : 3000),
      );
      const body = (i: number, n: number) => {
        const m = new Uint8Array(n);
        for (let j = 0; j < n; j += 997) m[j] = (i * 31 + j) & 255;
        m[n - 1] = i & 255;
        return m;
      };
      const sameAs = (m: Uint8Array, i: number, n: number) => Buffer.from(m).equals(Buffer.from(body(i, n)));
      // Server: transient, checks each message inside its callback, then scribbles on it.
      pair.server.transientMessages = true;
      const bad: number[] = [];
      let serverGot = 0;
      const serverDone = new Promise<void>((resolve) => {
        pair.server.onmessage = (m) => {
          if (!sameAs(m, serverGot, sizes[serverGot])) bad.push(serverGot);
          m.fill(0);
          if (++serverGot === sizes.length) resolve();
        };
      });
      // Client: keeps every message and checks them all at the end.
      const clientGot = collect(pair.client, sizes.length);
      for (let i = 0; i < sizes.length; i++) {
        pair.client.send([body(i, sizes[i])]);
        pair.server.send([body(i, sizes[i])]);
      }
      await serverDone;
      assert.deepEqual(bad, [], 'transient receiver saw the right bytes');
      const kept = await clientGot;
      for (const [i, m] of kept.entries()) assert.ok(sameAs(m, i, sizes[i]), `kept message ${i}`);
    } finally {
      await pair.dispose();
    }
  });
});

describe('webrtc listener caps', () => {
  /** A raw signalling connection that sends nothing: what it receives and how it closed. */
  async function rawSignalling(net: MemoryNetwork) {
    const raw = await net.dialer().dial('memory://sig');
    const got: Uint8Array[] = [];
    raw.onmessage = (m) => got.push(m);
    const closed = new Promise<TabshardError | undefined>((resolve) => {
      raw.onclose = resolve;
    });
    return { raw, got, closed };
  }
  const refusedWithRateLimit = (e: unknown) =>
    e instanceof TabshardError && e.code === 'TS_ERR_CONNECT_FAILED' && /TS_ERR_RATE_LIMITED/.test(e.message);

  it('refuses a handshake past maxPeers live connections with an error signal, and accepts again once one closes', async () => {
    const net = new MemoryNetwork({ seed: 71, maxDelay: 1 });
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl, maxPeers: 2 });
    const errors: string[] = [];
    listener.onerror = (e) => errors.push(e.code);
    const accepted: Conn[] = [];
    listener.onconnection = (c) => accepted.push(c);
    const dialer = webRtcDialer({ signalling: net.dialer(), wrtc: impl });
    try {
      const clients = [await dialer.dial(listener.address), await dialer.dial(listener.address)];
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(listener.load, { peers: 2, handshakes: 0 });

      // A third signalling connection gets the coded error signal and is closed; no peer is made.
      const third = await rawSignalling(net);
      await third.closed;
      assert.equal(third.got.length, 1);
      assert.deepEqual(
        (({ type, code }) => ({ type, code }))(decodeSignal(third.got[0]) as { type: string; code: string }),
        { type: 'error', code: 'TS_ERR_RATE_LIMITED' },
      );
      // A real dialer learns it as a failed dial naming the code (a tab then uses the ws relay).
      await assert.rejects(dialer.dial(listener.address), refusedWithRateLimit);
      assert.deepEqual(listener.refused, { peers: 2, handshakes: 0 });
      assert.deepEqual(errors, ['TS_ERR_RATE_LIMITED', 'TS_ERR_RATE_LIMITED']);
      assert.equal(listener.load.peers, 2);

      // The accepted connections still work; closing one frees its place.
      const got = collect(accepted[1], 1);
      clients[1].send([Uint8Array.of(9)]);
      assert.deepEqual((await got)[0], Uint8Array.of(9));
      const gone = new Promise<void>((resolve) => {
        accepted[0].onclose = () => resolve();
      });
      clients[0].close();
      await gone;
      const again = await dialer.dial(listener.address);
      while (accepted.length < 3) await new Promise((r) => setTimeout(r, 5));
      assert.equal(listener.load.peers, 2);
      again.close();
      clients[1].close();
    } finally {
      await listener.close();
    }
  });

  it('refuses a signalling connection past maxHandshakes in progress, and accepts again once they end', async () => {
    const net = new MemoryNetwork({ seed: 72, maxDelay: 1 });
    const listener = new WebRtcListener({ signalling: net.listen('sig'), wrtc: impl, maxHandshakes: 2 });
    const accepted: Conn[] = [];
    listener.onconnection = (c) => accepted.push(c);
    const dialer = webRtcDialer({ signalling: net.dialer(), wrtc: impl });
    try {
      // Two handshakes that never send an offer hold both places.
      const stalled = [await rawSignalling(net), await rawSignalling(net)];
      while (listener.load.handshakes < 2) await new Promise((r) => setTimeout(r, 5));
      const third = await rawSignalling(net);
      await third.closed;
      assert.equal((decodeSignal(third.got[0]) as { code: string }).code, 'TS_ERR_RATE_LIMITED');
      await assert.rejects(dialer.dial(listener.address), refusedWithRateLimit);
      assert.deepEqual(listener.refused, { peers: 0, handshakes: 2 });
      assert.equal(listener.load.handshakes, 2, 'the refused ones never became handshakes');

      // Their signalling closes: the handshakes end, and a real peer gets through.
      for (const s of stalled) s.raw.close();
      while (listener.load.handshakes > 0) await new Promise((r) => setTimeout(r, 5));
      const client = await dialer.dial(listener.address);
      while (accepted.length < 1) await new Promise((r) => setTimeout(r, 5));
      const got = collect(accepted[0], 1);
      client.send([Uint8Array.of(4)]);
      assert.deepEqual((await got)[0], Uint8Array.of(4));
      client.close();
    } finally {
      await listener.close();
    }
  });
});
