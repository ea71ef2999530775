/**
 * The gateway's abuse limits on a real port (limits.ts, ws-routes.ts), with in-memory echo
 * nodes behind the relays and a fake job for the scheduler session:
 *
 * - a foreign Origin is refused with 403 TS_ERR_BAD_ORIGIN on every WebSocket route, before the
 *   upgrade; the gateway's own origin, an allowed one and no Origin pass;
 * - a message above a route's limit is refused at its frame header (close 1009 on the header
 *   alone), and a 60 MiB message to the signal relay leaves the gateway's memory as it was
 *   (while the same message to the 64 MiB data relay is seen buffered: the measure works);
 * - open sessions and relays per address, new WebSockets per address (token bucket), and HTTP
 *   requests per address are capped with 429 TS_ERR_RATE_LIMITED; X-Forwarded-For counts only
 *   with trustProxy; the defaults admit what 16 tabs of the e2e tests open at once;
 * - every refusal counts in tabshard_refusals_total{code,where}.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn } from '../../shared/transport/types.ts';
import type { JobDriver } from '../jobs/driver.ts';
import { buildApp, type GatewayDeps } from './app.ts';
import { AddressLimits, originAllowed, originSet } from './limits.ts';

const TOKEN = 'limits-token';
const NODES = ['n1', 'n2', 'n3'];

interface Gateway {
  app: ReturnType<typeof buildApp>;
  host: string;
  /** Scheduler sessions the fake job was handed. */
  sessions: Conn[];
  /** Node-side connections the relays opened. */
  nodeConns: Conn[];
  refusals(): Promise<Record<string, number>>;
}

const running: Gateway[] = [];
const clients: WebSocket[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const s of sockets.splice(0)) s.destroy();
  for (const g of running.splice(0)) await g.app.close();
});

/** A gateway on a real port: three echo nodes (messages under 1 MiB come back), job 1, the admin token. */
async function gateway(extra: Partial<GatewayDeps> = {}): Promise<Gateway> {
  const net = new MemoryNetwork({ seed: 1, maxDelay: 0 });
  const nodeConns: Conn[] = [];
  for (const n of NODES)
    net.listen(n).onconnection = (c) => {
      nodeConns.push(c);
      c.onmessage = (m) => {
        if (m.byteLength < 1 << 20) c.send([m]);
      };
    };
  const addresses: ClusterInfo['addresses'] = {};
  NODES.forEach((n, i) => {
    addresses[n] = { tcp: `tcp://${n}:${1000 + i}`, webrtc: `webrtc+tcp://${n}:${2000 + i}` };
  });
  const cluster = { ring: { version: 1, vnodes: 4, smallTableValues: 65536, nodes: NODES }, addresses, tables: [] };
  const sessions: Conn[] = [];
  const job = {
    app: { job: 1, tables: [] },
    scheduler: { serve: (c: Conn) => sessions.push(c) },
    status: () => ({
      job: 1,
      workers: [],
      tasks: { pending: 0, leased: 0, fencing: 0, done: 0 },
      reassignments: 0,
      iterationsDone: 0,
      tau: 0,
      state: 'running',
      metrics: [],
    }),
  } as unknown as JobDriver;
  const app = buildApp({
    cluster: () => cluster as never,
    stats: async () => [],
    dialer: { kind: 'tcp', dial: (a) => net.dialer().dial(`memory://${new URL(a).hostname}`) },
    jobs: () => [job],
    adminToken: TOKEN,
    ...extra,
  });
  const host = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('http://', '');
  const refusals = async () => {
    // From an address of its own: the scrape must not count against the client under test.
    const res = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
      remoteAddress: '192.0.2.250',
    });
    assert.equal(res.statusCode, 200);
    const out: Record<string, number> = {};
    for (const m of res.body.matchAll(/^tabshard_refusals_total\{code="(\w+)",where="([\w-]+)"\} (\S+)$/gm))
      out[`${m[2]} ${m[1]}`] = Number(m[3]);
    return out;
  };
  const g = { app, host, sessions, nodeConns, refusals };
  running.push(g);
  return g;
}

type Opened =
  | { ws: WebSocket; status?: undefined }
  | { ws?: undefined; status: number; body: unknown; headers: Record<string, unknown> };

/** Opens a WebSocket: the open socket, or the HTTP answer that refused the upgrade. */
function open(url: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    clients.push(ws);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d;
      });
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

const bodyOf = (o: Opened) => (o.ws ? {} : (o.body as { code?: string; message?: string }));
const codeOf = (o: Opened) => (o.ws ? 'open' : `${o.status} ${bodyOf(o).code}`);

/** Closes a client and waits until the gateway has seen its TCP socket close (its slot is free). */
async function closeAndWait(ws: WebSocket): Promise<void> {
  const gone = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.close();
  await gone;
  await new Promise((r) => setTimeout(r, 20));
}

describe('Origin check on WebSocket routes', () => {
  it('refuses a foreign Origin with 403 TS_ERR_BAD_ORIGIN on every WebSocket route, before the upgrade', async () => {
    const g = await gateway({ allowedOrigins: ['https://lab.example.org'] });
    const routes = ['/relay/n1/signal', '/relay/n1/data', '/api/jobs/1/session', '/no/such/route'];
    for (const r of routes) {
      const o = await open(`ws://${g.host}${r}`, { origin: 'https://evil.example' });
      assert.equal(codeOf(o), '403 TS_ERR_BAD_ORIGIN', r);
      assert.match(String(bodyOf(o).message), /evil\.example/);
    }
    for (const origin of ['null', `http://${g.host}.evil.example`, 'http://127.0.0.1:1'])
      assert.equal(codeOf(await open(`ws://${g.host}/relay/n1/data`, { origin })), '403 TS_ERR_BAD_ORIGIN', origin);
    assert.equal(g.nodeConns.length, 0, 'no refused upgrade reached a node');
    assert.equal(g.sessions.length, 0);
    // The gateway's own origin (http or https), an allowed origin, and no Origin at all pass.
    for (const origin of [`http://${g.host}`, `https://${g.host}`, 'https://lab.example.org', undefined]) {
      const o = await open(`ws://${g.host}/api/jobs/1/session`, origin ? { origin } : {});
      assert.equal(codeOf(o), 'open', String(origin));
    }
    while (g.sessions.length < 4) await new Promise((r) => setTimeout(r, 5));
    const r = await g.refusals();
    assert.equal(r['origin TS_ERR_BAD_ORIGIN'], routes.length + 3);
    assert.equal(r['ws-rate TS_ERR_RATE_LIMITED'], 0);
  });

  it('compares hosts with default ports as the origin’s scheme has them; allowedOrigins must be origins', () => {
    const none = new Set<string>();
    assert.ok(originAllowed(undefined, 'gw:8080', none));
    assert.ok(originAllowed('https://GW.example:443', 'gw.example', none));
    assert.ok(originAllowed('https://gw.example', 'gw.example:443', none));
    assert.ok(!originAllowed('http://gw.example', 'gw.example:8080', none));
    assert.ok(!originAllowed('http://gw.example:8080', 'gw.example', none));
    assert.ok(!originAllowed('chrome-extension://abc', 'abc', none));
    assert.ok(!originAllowed('null', 'gw', none));
    assert.ok(originAllowed('null', 'gw', originSet(['null'])));
    assert.ok(originAllowed('https://a.example', 'gw', originSet(['https://a.example/'])));
    assert.throws(() => originSet(['a.example']), /not an http\(s\) origin/);
    assert.throws(() => originSet(['https://a.example/path']), /not an http\(s\) origin/);
  });
});

/** A WebSocket over a raw TCP socket, so a test can write frame headers by hand. */
async function rawWebSocket(host: string, path: string) {
  const [h, port] = host.split(':');
  // Half-open: the sender goes on writing after the gateway has closed its side (as an attacker would).
  const sock = connect({ port: Number(port), host: h, allowHalfOpen: true });
  sockets.push(sock);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.on('error', () => {});
  sock.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let onFrame: (() => void) | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buf.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101/.test(status)) return reject(new Error(status));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve();
      }
      // Server frames: unmasked; lengths here stay below 64 KiB + 1 (7- or 16-bit lengths).
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          at = 10;
        }
        if (buf.length < at + len) return;
        frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(at, at + len) });
        buf = buf.subarray(at + len);
        onFrame?.();
      }
    });
  });
  await ready;
  /** The first frame with this opcode (8: close), within 5 s. */
  const frame = (opcode: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame ${opcode} within 5 s`)), 5000);
      const look = () => {
        const f = frames.find((x) => x.opcode === opcode);
        if (f) {
          clearTimeout(timer);
          onFrame = null;
          resolve(f.payload);
        }
      };
      onFrame = look;
      look();
    });
  /** A masked binary frame header (mask key 0: the payload goes as is) declaring `length` bytes. */
  const header = (length: number) => {
    const b = Buffer.alloc(14);
    b[0] = 0x82;
    b[1] = 0x80 | 127;
    b.writeBigUInt64BE(BigInt(length), 2);
    return b; // bytes 10..13: the zero mask key
  };
  return { sock, frame, header };
}

const MiB = 1024 * 1024;

// A full collection on demand: memory still held, not garbage waiting for the collector.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Collects twice, letting V8 release array buffer memory (swept concurrently) in between. */
async function settle(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  await new Promise((r) => setTimeout(r, 50));
}

describe('message size refused at the frame header', () => {
  it('closes with 1009 on the header of a message above the route limit (signal 65 536, session 64 KiB)', async () => {
    const g = await gateway();
    for (const path of ['/relay/n1/signal', '/api/jobs/1/session']) {
      const c = await rawWebSocket(g.host, path);
      // Only the 14-byte header of a 60 MiB message goes out: no payload at all.
      c.sock.write(c.header(60 * MiB));
      const close = await c.frame(8);
      assert.equal(close.readUInt16BE(0), 1009, path);
    }
    // A message of exactly 65 536 bytes is relayed (and echoed by the node).
    const ok = await rawWebSocket(g.host, '/relay/n2/signal');
    ok.sock.write(Buffer.concat([ok.header(65_536), Buffer.alloc(65_536, 7)]));
    assert.equal((await ok.frame(2)).length, 65_536);
    const over = await rawWebSocket(g.host, '/relay/n2/signal');
    over.sock.write(over.header(65_537));
    assert.equal((await over.frame(8)).readUInt16BE(0), 1009);
    assert.equal((await g.refusals())['ws-size TS_ERR_FRAME_TOO_LARGE'], 3);
  });

  /**
   * Streams a 60 MiB message to `path` from one reused 1 MiB buffer (the sender allocates
   * nothing) and measures this process (the gateway): `held`, memory still held after a full
   * collection once 50 MiB were sent and read (what the gateway buffers); `peak`, the highest
   * growth sampled every 2 ms (garbage included: the dropped payload waits for the collector).
   */
  async function streamAndMeasure(g: Gateway, path: string) {
    const c = await rawWebSocket(g.host, path);
    const chunk = Buffer.alloc(MiB);
    await settle();
    const base = process.memoryUsage();
    const peak = { rss: 0, arrayBuffers: 0 };
    const sample = () => {
      const m = process.memoryUsage();
      peak.rss = Math.max(peak.rss, m.rss - base.rss);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers - base.arrayBuffers);
    };
    const timer = setInterval(sample, 2);
    const t0 = performance.now();
    let sent = 0;
    let held = { rss: 0, arrayBuffers: 0 };
    let closeAt: number | null = null;
    void c.frame(8).then(
      () => {
        closeAt = sent;
      },
      () => {},
    );
    try {
      c.sock.write(c.header(60 * MiB));
      while (sent < 60 * MiB && !c.sock.destroyed) {
        sent += chunk.length;
        if (!c.sock.write(chunk))
          await new Promise<void>((resolve) => {
            c.sock.once('drain', resolve);
            c.sock.once('close', resolve);
          });
        if (sent === 50 * MiB) {
          await new Promise((r) => setTimeout(r, 100)); // the gateway reads what is in flight
          sample();
          await settle();
          const m = process.memoryUsage();
          held = { rss: m.rss - base.rss, arrayBuffers: m.arrayBuffers - base.arrayBuffers };
        }
      }
      await new Promise((r) => setTimeout(r, 100));
      sample();
    } finally {
      clearInterval(timer);
    }
    const mib = (n: number) => Math.round((n / MiB) * 10) / 10;
    return {
      heldArrayBuffersMiB: mib(held.arrayBuffers),
      heldRssMiB: mib(held.rss),
      peakArrayBuffersMiB: mib(peak.arrayBuffers),
      peakRssMiB: mib(peak.rss),
      sentMiB: mib(sent),
      closeAfterMiB: closeAt === null ? null : mib(closeAt),
      ms: Math.round(performance.now() - t0),
    };
  }

  it('a 60 MiB message to the signal relay leaves nothing held by the gateway; to the data relay it is held whole', async () => {
    // The sender must get to send all 60 MiB after the refusal, however slow this machine is: the
    // cut-off of a refused sender (1 s by default) is set out of the way here.
    const g = await gateway({ limits: { refusedDrainMs: 120_000 } });
    const signal = await streamAndMeasure(g, '/relay/n1/signal');
    console.log(JSON.stringify({ test: 'ws-size-memory', route: 'signal', ...signal }));
    assert.equal(signal.sentMiB, 60);
    assert.ok(signal.heldArrayBuffersMiB < 2, `the gateway holds ${signal.heldArrayBuffersMiB} MiB more`);
    assert.ok(signal.closeAfterMiB !== null && signal.closeAfterMiB < 60, 'close 1009 came before the sender was done');
    // The same message to /data (limit 64 MiB) is buffered whole: the measure does see buffering.
    const data = await streamAndMeasure(g, '/relay/n1/data');
    console.log(JSON.stringify({ test: 'ws-size-memory', route: 'data', ...data }));
    assert.ok(data.heldArrayBuffersMiB >= 45, `the gateway holds only ${data.heldArrayBuffersMiB} MiB more`);
  });
});

describe('per-address limits', () => {
  it('caps open scheduler sessions per address, and frees a slot when a session closes', async () => {
    const g = await gateway({ limits: { maxSessionsPerAddress: 2 } });
    const url = `ws://${g.host}/api/jobs/1/session`;
    const a = await open(url);
    const b = await open(url);
    assert.equal(codeOf(a), 'open');
    assert.equal(codeOf(b), 'open');
    const c = await open(url);
    assert.equal(codeOf(c), '429 TS_ERR_RATE_LIMITED');
    assert.match(String(bodyOf(c).message), /127\.0\.0\.1 has 2 scheduler sessions open/);
    // Relays are counted apart.
    assert.equal(codeOf(await open(`ws://${g.host}/relay/n1/data`)), 'open');
    await closeAndWait(a.ws!);
    assert.equal(codeOf(await open(url)), 'open');
    assert.equal(codeOf(await open(url)), '429 TS_ERR_RATE_LIMITED');
    assert.equal((await g.refusals())['sessions TS_ERR_RATE_LIMITED'], 2);
  });

  it('caps open relay connections (signal and data together) per address', async () => {
    const g = await gateway({ limits: { maxRelaysPerAddress: 3 } });
    const opened = [];
    for (const r of ['/relay/n1/signal', '/relay/n1/data', '/relay/n2/signal'])
      opened.push(await open(`ws://${g.host}${r}`));
    assert.deepEqual(opened.map(codeOf), ['open', 'open', 'open']);
    assert.equal(codeOf(await open(`ws://${g.host}/relay/n3/data`)), '429 TS_ERR_RATE_LIMITED');
    assert.equal(codeOf(await open(`ws://${g.host}/api/jobs/1/session`)), 'open');
    await closeAndWait(opened[0].ws!);
    assert.equal(codeOf(await open(`ws://${g.host}/relay/n3/data`)), 'open');
    assert.equal((await g.refusals())['relays TS_ERR_RATE_LIMITED'], 1);
    // A refused upgrade never dialed a node: 3 relays + 1 after the close.
    assert.equal(g.nodeConns.length, 4);
  });

  it('limits new WebSockets per address with a token bucket (any route), with retry-after', async () => {
    const g = await gateway({ limits: { wsBurst: 3, wsPerSecond: 0.5 } });
    const got = [];
    for (let i = 0; i < 4; i++) {
      const o = await open(`ws://${g.host}/relay/n1/data`);
      got.push(o);
      if (o.ws) await closeAndWait(o.ws); // closing does not give tokens back
    }
    assert.deepEqual(got.map(codeOf), ['open', 'open', 'open', '429 TS_ERR_RATE_LIMITED']);
    const refused = got[3] as { headers: Record<string, unknown> };
    assert.equal(refused.headers['retry-after'], '2');
    assert.equal(codeOf(await open(`ws://${g.host}/api/jobs/1/session`)), '429 TS_ERR_RATE_LIMITED');
    assert.equal((await g.refusals())['ws-rate TS_ERR_RATE_LIMITED'], 2);
  });

  it('refills the bucket at its rate and forgets idle addresses', () => {
    let now = 0;
    const l = new AddressLimits(
      { wsBurst: 2, wsPerSecond: 4, maxSessionsPerAddress: 1, maxRelaysPerAddress: 1 },
      () => now,
    );
    assert.deepEqual([l.take('a'), l.take('a'), l.take('a'), l.take('b')], [true, true, false, true]);
    assert.equal(l.retryAfter('a'), 1);
    now = 240;
    assert.equal(l.take('a'), false); // 0.96 of a token
    now = 250;
    assert.equal(l.take('a'), true);
    const release = l.reserve('sessions', 'a')!;
    assert.equal(l.reserve('sessions', 'a'), null);
    assert.ok(l.reserve('relays', 'a'));
    release();
    release(); // once only
    assert.equal(l.count('sessions', 'a'), 0);
    now = 120_000; // past a sweep: idle buckets are dropped, and full again
    assert.deepEqual([l.take('c'), l.take('a'), l.take('a'), l.take('a')], [true, true, true, false]);
  });

  it('counts the TCP peer, not X-Forwarded-For, unless trustProxy is set', async () => {
    const plain = await gateway({ limits: { maxSessionsPerAddress: 1 } });
    const url = (g: Gateway) => `ws://${g.host}/api/jobs/1/session`;
    assert.equal(codeOf(await open(url(plain), { 'x-forwarded-for': '198.51.100.1' })), 'open');
    assert.equal(codeOf(await open(url(plain), { 'x-forwarded-for': '198.51.100.2' })), '429 TS_ERR_RATE_LIMITED');
    const proxied = await gateway({ limits: { maxSessionsPerAddress: 1 }, trustProxy: true });
    assert.equal(codeOf(await open(url(proxied), { 'x-forwarded-for': '198.51.100.1' })), 'open');
    assert.equal(codeOf(await open(url(proxied), { 'x-forwarded-for': '198.51.100.2' })), 'open');
    assert.equal(codeOf(await open(url(proxied), { 'x-forwarded-for': '198.51.100.1' })), '429 TS_ERR_RATE_LIMITED');
    // IPv6 clients count by /64; IPv4-mapped addresses as IPv4.
    assert.equal(codeOf(await open(url(proxied), { 'x-forwarded-for': '2001:db8:1:2::a' })), 'open');
    assert.equal(codeOf(await open(url(proxied), { 'x-forwarded-for': '2001:db8:1:2::b' })), '429 TS_ERR_RATE_LIMITED');
    assert.equal(
      codeOf(await open(url(proxied), { 'x-forwarded-for': '::ffff:198.51.100.2' })),
      '429 TS_ERR_RATE_LIMITED',
    );
  });

  it('the defaults admit 16 tabs opening a session and two relays to each of 3 nodes at once from one address', async () => {
    const g = await gateway();
    const urls: string[] = [];
    for (let tab = 0; tab < 16; tab++) {
      urls.push(`ws://${g.host}/api/jobs/1/session`);
      for (const n of NODES) urls.push(`ws://${g.host}/relay/${n}/signal`, `ws://${g.host}/relay/${n}/data`);
    }
    const got = await Promise.all(urls.map((u) => open(u, { origin: `http://${g.host}` })));
    assert.deepEqual(
      got.map(codeOf).filter((c) => c !== 'open'),
      [],
    );
    assert.equal(got.length, 112);
    const r = await g.refusals();
    assert.deepEqual(
      Object.values(r).filter((v) => v > 0),
      [],
    );
  });
});

describe('HTTP rate limit', () => {
  it('answers 429 TS_ERR_RATE_LIMITED with retry-after past httpMax requests per window, unknown routes too; WebSockets are the bucket’s', async () => {
    const g = await gateway({ limits: { httpMax: 5 } });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`http://${g.host}/health`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    for (const path of ['/health', '/no/such/route', '/api/stats']) {
      const res = await fetch(`http://${g.host}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 429, path);
      assert.equal(((await res.json()) as { code: string }).code, 'TS_ERR_RATE_LIMITED');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
    }
    assert.equal(codeOf(await open(`ws://${g.host}/api/jobs/1/session`)), 'open');
    const r = await g.refusals();
    assert.equal(r['http-rate TS_ERR_RATE_LIMITED'], 3);
  });

  it('a plain GET to a WebSocket route gets 426', async () => {
    const g = await gateway();
    const res = await g.app.inject('/relay/n1/signal');
    assert.equal(res.statusCode, 426);
    assert.equal(res.json().code, 'TS_ERR_INVALID_ARGUMENT');
  });
});
