/**
 * Gateway relays with real parts: two server nodes (TCP + WebRTC listeners, in this process),
 * the server manager, the gateway on a real port, and Node workers that reach the nodes only
 * through the gateway — over the ws data relay, over WebRTC signalled through the relay
 * (@roamhq/wrtc), and with WebRTC made to fail (relay-only ICE policy) falling back to ws.
 * Malformed signalling and data through the relay get coded errors; other connections keep working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import { WebSocket } from 'ws';
import { FallbackDialer } from '../../client/transports/fallback.ts';
import { WebRtcDialer, type WrtcImpl } from '../../client/transports/webrtc.ts';
import { WsDialer } from '../../client/transports/ws.ts';
import { Worker } from '../../client/worker.ts';
import { type ClusterInfo, parseClusterInfo } from '../../shared/cluster.ts';
import { decodeError, encodeJson } from '../../shared/protocol/control.ts';
import { decodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import type { TableSpec } from '../../shared/table.ts';
import { ServerManager } from '../manager.ts';
import { type RunningNode, startNode } from '../node/process.ts';
import { tcpDialer } from '../transports/tcp.ts';
import { buildApp } from './app.ts';
import { relayCluster } from './relay.ts';

const impl = wrtc as unknown as WrtcImpl;
const table = (id: number, name: string, kind: 'dense' | 'sparse', keySpace: number): TableSpec => ({
  job: 0,
  id,
  name,
  kind,
  keySpace,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
});

/** A raw WebSocket client: messages received (bytes) and how it closed. */
function rawClient(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const messages: Uint8Array[] = [];
  let onMessage: (() => void) | null = null;
  ws.on('message', (data: ArrayBuffer, isBinary) => {
    messages.push(isBinary ? new Uint8Array(data) : new TextEncoder().encode(String(data)));
    onMessage?.();
  });
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const next = () =>
    new Promise<Uint8Array>((resolve) => {
      const have = messages.length;
      onMessage = () => messages.length > have && resolve(messages[have]);
    });
  return { ws, messages, opened, closed, next };
}

describe('gateway relays', () => {
  let nodes: RunningNode[] = [];
  let manager: ServerManager;
  let app: ReturnType<typeof buildApp>;
  let gateway: string;
  const workers: Worker[] = [];

  before(async () => {
    nodes = await Promise.all(['n1', 'n2'].map((id) => startNode({ id, webrtc: true })));
    manager = new ServerManager(
      tcpDialer(),
      nodes.map((n) => ({ id: n.node.id, addresses: n.addresses, control: n.addresses.tcp! })),
      { vnodes: 16 },
    );
    await manager.start();
    await manager.defineTable(table(3, 'sum-sparse', 'sparse', 2 ** 24));
    await manager.defineTable(table(4, 'sum-dense', 'dense', 1 << 20));
    app = buildApp({ cluster: () => manager.info, stats: () => manager.stats(), dialer: tcpDialer() });
    gateway = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('http://', '');
  });

  after(async () => {
    for (const w of workers) w.close();
    manager?.close();
    await app?.close();
    await Promise.all(nodes.map((n) => n.close()));
  });

  const fetchCluster = async (): Promise<ClusterInfo> => {
    const res = await fetch(`http://${gateway}/api/jobs/0/cluster`);
    assert.equal(res.status, 200);
    return parseClusterInfo(await res.json());
  };

  async function roundTrip(w: Worker, base: number): Promise<void> {
    const keys = Float64Array.of(base, base + 5, 2 ** 23 + base);
    await w.wait(w.table('sum-sparse').push(keys, Float32Array.of(1, 2, 3)));
    await w.wait(w.table('sum-sparse').push(keys, Float32Array.of(1, 2, 3)));
    assert.deepEqual(await w.wait(w.table('sum-sparse').pull(keys)), Float32Array.of(2, 4, 6));
    const begin = (base / 100) * 8000; // a range no other round trip touches
    const range = { begin, end: begin + 5000 };
    await w.wait(w.table('sum-dense').push(range, new Float32Array(5000).fill(0.5)));
    const got = (await w.wait(w.table('sum-dense').pull(range)))!;
    assert.equal(got.length, 5000);
    assert.ok(got.every((x) => x === 0.5));
    // The whole table spans every node (a table above the ring's small-table size is split).
    const all = (await w.wait(w.table('sum-dense').pull({ begin: 0, end: 1 << 20 })))!;
    assert.deepEqual(all.subarray(begin, begin + 2), Float32Array.of(0.5, 0.5));
  }

  it('publishes relay addresses per job (relayCluster) and validates the job', async () => {
    const info = relayCluster(manager.info, 'example.org:8080', 0);
    assert.deepEqual(info.addresses.n1, {
      webrtc: 'webrtc+ws://example.org:8080/relay/n1/signal',
      ws: 'ws://example.org:8080/relay/n1/data',
    });
    assert.equal(relayCluster(manager.info, 'h', 0, true).addresses.n2.ws, 'wss://h/relay/n2/data');
    assert.deepEqual(relayCluster(manager.info, 'h', 9).tables, []);
    assert.throws(() => relayCluster(manager.info, 'evil/"x', 0), { code: 'TS_ERR_INVALID_ARGUMENT' });
    const ok = await app.inject({ url: '/api/jobs/0/cluster', headers: { host: 'gw:1' } });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().addresses.n1.ws, 'ws://gw:1/relay/n1/data');
    assert.deepEqual(
      ok.json().tables.map((t: TableSpec) => t.name),
      ['sum-sparse', 'sum-dense'],
    );
    const unknown = await app.inject({ url: '/api/jobs/7/cluster' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().code, 'TS_ERR_UNKNOWN_JOB');
    const bad = await app.inject({ url: '/api/jobs/x/cluster' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'TS_ERR_INVALID_ARGUMENT');
  });

  it('carries push and pull over the ws data relay', async () => {
    const w = await Worker.connect({ seed: fetchCluster, dialers: { ws: new WsDialer(WebSocket) }, prefer: ['ws'] });
    workers.push(w);
    await roundTrip(w, 100);
  });

  it('signals WebRTC through the relay; the data channel then carries push and pull', async () => {
    const ws = new WsDialer(WebSocket);
    const rtc = new FallbackDialer({ webrtc: new WebRtcDialer({ signalling: ws, wrtc: impl }), ws, timeoutMs: 5000 });
    const w = await Worker.connect({
      seed: async () => {
        const info = await fetchCluster();
        rtc.learn(info);
        return info;
      },
      dialers: { webrtc: rtc, ws },
    });
    workers.push(w);
    await roundTrip(w, 200);
    assert.deepEqual([...rtc.used.values()].map((r) => [r.node, r.kind]).sort(), [
      ['n1', 'webrtc'],
      ['n2', 'webrtc'],
    ]);
  });

  it('falls back to the ws relay when WebRTC cannot connect, and says why', async () => {
    const ws = new WsDialer(WebSocket);
    // A relay-only ICE policy with no TURN server gathers no candidates: ICE never connects.
    const blocked = new WebRtcDialer({
      signalling: ws,
      wrtc: impl,
      config: { iceServers: [], iceTransportPolicy: 'relay' },
    });
    const rtc = new FallbackDialer({ webrtc: blocked, ws, timeoutMs: 1000 });
    const w = await Worker.connect({
      seed: async () => {
        const info = await fetchCluster();
        rtc.learn(info);
        return info;
      },
      dialers: { webrtc: rtc, ws },
    });
    workers.push(w);
    await roundTrip(w, 300);
    const used = [...rtc.used.values()];
    assert.equal(used.length, 2);
    for (const r of used) {
      assert.equal(r.kind, 'ws');
      assert.match(r.fallbackReason!, /^TS_ERR_CONNECT_FAILED/);
      assert.ok(r.ms >= 1000);
    }
  });

  it('answers malformed signalling with a coded error signal while another worker keeps working', async () => {
    const w = await Worker.connect({ seed: fetchCluster, dialers: { ws: new WsDialer(WebSocket) }, prefer: ['ws'] });
    workers.push(w);
    const bad = rawClient(`ws://${gateway}/relay/n1/signal`);
    await bad.opened;
    const reply = bad.next();
    bad.ws.send(new TextEncoder().encode('{"type":"offer"'));
    const signal = JSON.parse(new TextDecoder().decode(await reply));
    assert.equal(signal.type, 'error');
    assert.equal(signal.code, 'TS_ERR_FRAME_MALFORMED');
    await bad.closed;
    await roundTrip(w, 400);
  });

  it('answers a malformed data frame with an ERROR frame on that connection only; a text frame closes it with a code', async () => {
    const w = await Worker.connect({ seed: fetchCluster, dialers: { ws: new WsDialer(WebSocket) }, prefer: ['ws'] });
    workers.push(w);
    const bad = rawClient(`ws://${gateway}/relay/n2/data`);
    await bad.opened;
    for (const junk of [Uint8Array.of(1, 2, 3), new Uint8Array(64).fill(0xff)]) {
      const reply = bad.next();
      bad.ws.send(junk);
      const f = decodeFrame(await reply);
      assert.equal(f.type, MsgType.ERROR);
      assert.match(decodeError(f).code, /^TS_ERR_FRAME_/);
    }
    await roundTrip(w, 500);
    bad.ws.send('not binary');
    const closed = await bad.closed;
    assert.equal(closed.code, 4000);
    assert.match(closed.reason, /^TS_ERR_FRAME_MALFORMED/);
    await roundTrip(w, 600);
  });

  it('closes an unknown node with TS_ERR_CONNECT_FAILED, and the tab side when the node closes', async () => {
    const unknown = rawClient(`ws://${gateway}/relay/n9/data`);
    const c = await unknown.closed;
    assert.equal(c.code, 4000);
    assert.match(c.reason, /^TS_ERR_CONNECT_FAILED/);

    const before = nodes[0].node.stats().connections;
    const tab = rawClient(`ws://${gateway}/relay/n1/data`);
    await tab.opened;
    // A HELLO round trip proves the node connection is up.
    const hello = tab.next();
    tab.ws.send(Buffer.concat(encodeJson(MsgType.HELLO, 1, { role: 'worker' })));
    assert.equal(decodeFrame(await hello).type, MsgType.HELLO);
    assert.equal(nodes[0].node.stats().connections, before + 1);
    tab.ws.close();
    await tab.closed;
    while (nodes[0].node.stats().connections > before) await new Promise((r) => setImmediate(r));

    const tab2 = rawClient(`ws://${gateway}/relay/n1/data`);
    await tab2.opened;
    const hello2 = tab2.next();
    tab2.ws.send(Buffer.concat(encodeJson(MsgType.HELLO, 1, { role: 'worker' })));
    await hello2;
    await nodes[0].close();
    const c2 = await tab2.closed;
    assert.ok(c2.code === 1000 || c2.code === 4000, `closed with ${c2.code}`);
  });
});
