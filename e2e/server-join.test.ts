/**
 * `tabshard server --join <gateway URL>` as a real process: once it listens it posts its id and
 * addresses to `<URL>/api/nodes` with the admin token, prints `{"event":"joined",…}` and keeps
 * serving; when it cannot join (nothing listens there, the gateway refuses, no token) it prints
 * exactly one line on stderr, `tabshard: could not join <URL>: <reason>`, and exits 1. The
 * gateway here is a stand-in (node:http) that records what it was sent; the join against a real
 * cluster's manager is tested where the manager's join lives. Every process started here is
 * spawned with --lifeline (its stdin a pipe this test holds) and killed by PID in `finally`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { ROOT } from './harness.ts';

const TOKEN = 'join-test-token';

interface Run {
  child: ChildProcess;
  /** JSON lines the process printed on stdout so far. */
  events: Array<Record<string, unknown>>;
  /** Resolves with the first stdout event of that name. */
  event(name: string): Promise<Record<string, unknown>>;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

function server(args: string[], env: Record<string, string | undefined> = { TABSHARD_ADMIN_TOKEN: TOKEN }): Run {
  const child = spawn(process.execPath, ['bin/tabshard.mjs', 'server', '--lifeline', ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TABSHARD_DEBUG: '', ...env },
  });
  const events: Array<Record<string, unknown>> = [];
  const waiting: Array<() => void> = [];
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    events.push(JSON.parse(line));
    for (const w of waiting.splice(0)) w();
  });
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const event = async (name: string) => {
    for (;;) {
      const ev = events.find((e) => e.event === name);
      if (ev) return ev;
      const more = new Promise<void>((r) => waiting.push(r));
      const ended = await Promise.race([more.then(() => false), exit.then(() => true)]);
      if (ended) {
        const late = events.find((e) => e.event === name);
        if (late) return late;
        throw new Error(`the server exited before printing ${name}; stderr: ${err}`);
      }
    }
  };
  return { child, events, event, stderr: () => err, exit };
}

/** Exits within `ms`, or fails the test (the process is killed in `finally` either way). */
async function exitWithin(run: Run, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; stderr: ${run.stderr()}`)), ms);
  });
  try {
    return await Promise.race([run.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Received {
  method?: string;
  url?: string;
  authorization?: string;
  contentType?: string;
  body: unknown;
}

/** A stand-in gateway: records each request and answers `reply(received)` as JSON. */
async function fakeGateway(
  reply: (r: Received) => { status: number; body: unknown },
): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const srv: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      const r = {
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body,
      };
      received.push(r);
      const { status, body: out } = reply(r);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

/** Opens a TCP connection to `tcp://host:port` and closes it (the node still accepts). */
function accepts(address: string): Promise<void> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

/** The lines of `text`, without the empty one after the last newline. */
const lines = (text: string) => text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);

describe('tabshard server --join', { timeout: 60_000 }, () => {
  it('nothing listens at the URL: exactly one line on stderr, `tabshard: could not join …`, and exit 1', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = server(['--id', 'j1', '--no-webrtc', '--join', url]);
    try {
      const exit = await exitWithin(run, 20_000);
      assert.deepEqual(exit, { code: 1, signal: null }, run.stderr());
      const err = lines(run.stderr());
      assert.equal(err.length, 1, `stderr: ${JSON.stringify(run.stderr())}`);
      assert.ok(err[0].startsWith(`tabshard: could not join ${url}: `), err[0]);
      assert.match(err[0], /ECONNREFUSED/);
      // It listened first: the join is tried by a node that serves.
      assert.deepEqual(
        run.events.map((e) => e.event),
        ['listening'],
      );
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('bound to every interface, tells the address given by --advertise (and is reached there)', async () => {
    const gw = await fakeGateway((r) => ({ status: 200, body: { node: (r.body as { id: string }).id, ring: 3 } }));
    // 127.0.0.2 is this machine too (all of 127/8 is loopback), but not the address it listens on.
    const run = server(['--id', 'j9', '--host', '0.0.0.0', '--advertise', '127.0.0.2', '--join', gw.url]);
    try {
      const listening = await run.event('listening');
      await run.event('joined');
      const addresses = listening.addresses as Record<string, string>;
      assert.match(addresses.tcp, /^tcp:\/\/127\.0\.0\.2:\d+$/);
      assert.match(addresses.webrtc, /^webrtc\+tcp:\/\/127\.0\.0\.2:\d+$/);
      assert.deepEqual(gw.received[0].body, { id: 'j9', addresses });
      await accepts(addresses.tcp);
      await accepts(addresses.webrtc.replace('webrtc+', ''));
    } finally {
      run.child.kill('SIGKILL');
      await gw.close();
    }
  });

  it('posts its id, addresses and the admin token, prints joined, and keeps serving', async () => {
    const gw = await fakeGateway((r) => ({
      status: 200,
      body: { node: (r.body as { id: string }).id, ring: 7 },
    }));
    const run = server(['--id', 'j2', '--join', `${gw.url}/`]);
    try {
      const listening = await run.event('listening');
      const joined = await run.event('joined');
      assert.deepEqual(joined, { event: 'joined', node: 'j2', ring: 7 });
      assert.equal(gw.received.length, 1);
      const [r] = gw.received;
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/api/nodes');
      assert.equal(r.authorization, `Bearer ${TOKEN}`);
      assert.match(r.contentType ?? '', /^application\/json/);
      const addresses = listening.addresses as Record<string, string>;
      assert.match(addresses.tcp, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.match(addresses.webrtc, /^webrtc\+tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(r.body, { id: 'j2', addresses });
      // Still serving a while later, and stops cleanly.
      await new Promise((res) => setTimeout(res, 500));
      assert.equal(run.child.exitCode, null, run.stderr());
      await accepts(addresses.tcp);
      run.child.kill('SIGTERM');
      assert.deepEqual(await exitWithin(run, 10_000), { code: 0, signal: null });
      assert.equal(run.stderr(), '');
    } finally {
      run.child.kill('SIGKILL');
      await gw.close();
    }
  });

  it("the gateway's refusal is the reason on the one line, with its code", async () => {
    const gw = await fakeGateway(() => ({
      status: 400,
      body: { code: 'TS_ERR_INVALID_ARGUMENT', message: 'invalid argument: node j3 is already a member' },
    }));
    const run = server(['--id', 'j3', '--no-webrtc', '--join', gw.url]);
    try {
      assert.deepEqual(await exitWithin(run, 20_000), { code: 1, signal: null });
      assert.deepEqual(lines(run.stderr()), [
        `tabshard: could not join ${gw.url}: TS_ERR_INVALID_ARGUMENT: invalid argument: node j3 is already a member (HTTP 400)`,
      ]);
    } finally {
      run.child.kill('SIGKILL');
      await gw.close();
    }
  });

  it('without TABSHARD_ADMIN_TOKEN, or with a URL that is not http(s), it exits 1 before listening', async () => {
    for (const [url, env, why] of [
      ['http://127.0.0.1:1', { TABSHARD_ADMIN_TOKEN: '' }, /TABSHARD_ADMIN_TOKEN is not set/],
      ['tcp://127.0.0.1:1', { TABSHARD_ADMIN_TOKEN: TOKEN }, /not an http\(s\) URL/],
    ] as const) {
      const run = server(['--id', 'j4', '--no-webrtc', '--join', url], env);
      try {
        assert.deepEqual(await exitWithin(run, 20_000), { code: 1, signal: null });
        const err = lines(run.stderr());
        assert.equal(err.length, 1, run.stderr());
        assert.ok(err[0].startsWith(`tabshard: could not join ${url}: `), err[0]);
        assert.match(err[0], why);
        assert.deepEqual(run.events, []);
      } finally {
        run.child.kill('SIGKILL');
      }
    }
  });
});
