/**
 * The console's Drain buttons in headless Chromium against a gateway with a stand-in membership
 * provider (no server nodes): a dead node's button is off; a click sends the drain, turns the
 * button off while the request is out and while the node shows 'draining', and says how the
 * request ended — the ring it installed, or the refusal with its code, inline in the row. The
 * note survives the ring change that rebuilds the rows. Skipped without /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserServer, chromium, type Page } from 'playwright-core';
import { TabshardError } from '../../shared/errors.ts';
import type { NodeView } from '../../shared/status.ts';
import { buildApp } from './app.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-drain-token';

/** A promise with its resolve and reject in hand. */
function deferred(): { promise: Promise<void>; resolve(): void; reject(err: Error): void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('console: draining a node', {
  skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing`,
  timeout: 60_000,
}, () => {
  let version = 1;
  const views = new Map<string, NodeView>(
    (['n1', 'n2', 'n3'] as const).map((id) => [
      id,
      { id, state: id === 'n3' ? 'dead' : 'up', masters: 4, replicas: 4 } as NodeView,
    ]),
  );
  const drains: string[] = [];
  let pending = deferred();
  let app: FastifyInstance;
  let server: BrowserServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    app = buildApp({
      cluster: () =>
        ({
          ring: { version, vnodes: 4, smallTableValues: 65536, nodes: ['n1', 'n2'] },
          addresses: {
            n1: { tcp: 'tcp://127.0.0.1:1' },
            n2: { tcp: 'tcp://127.0.0.1:2' },
            n3: { tcp: 'tcp://127.0.0.1:3' },
          },
          tables: [],
        }) as never,
      stats: async () =>
        ['n1', 'n2', 'n3'].map((node) =>
          node === 'n3' ? { node, error: 'declared dead' } : { node, connections: 1, frames: 0, errors: 0, tables: [] },
        ),
      nodes: () => [...views.values()],
      membership: {
        join: async () => Promise.reject(new Error('no joining in this test')),
        drain: async (id) => {
          drains.push(id);
          if (id === 'n1') throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'n1 is the last live node');
          views.set(id, { ...views.get(id)!, state: 'draining' });
          await pending.promise;
          views.set(id, { ...views.get(id)!, state: 'up', masters: 0, replicas: 0 });
          version++;
        },
      },
      assets: {},
      adminToken: TOKEN,
      consoleIntervalMs: 50,
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    server = await chromium.launchServer({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    browser = await chromium.connect(server.wsEndpoint());
    page = await browser.newPage();
    await page.goto(`${base}/admin`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#nodes tr[data-node="n3"]');
  });

  after(async () => {
    pending.resolve();
    await browser?.close().catch(() => {});
    await server?.close().catch(() => server.process()?.kill('SIGKILL'));
    await app?.close();
  });

  const row = (node: string) => `#nodes tr[data-node="${node}"]`;
  const disabled = (node: string) => page.isDisabled(`${row(node)} .btn-drain`);
  const note = (node: string) => page.textContent(`${row(node)} .drain-note`);
  /** Waits until `sel`'s text is `want` (or starts with it: `prefix`). Functions, not strings: the CSP has no 'unsafe-eval'. */
  const textIs = (sel: string, want: string, prefix = false) =>
    page.waitForFunction(
      ([s, w, p]) => {
        const t = document.querySelector(s)?.textContent ?? '';
        return p ? t.startsWith(w) : t === w;
      },
      [sel, want, prefix] as const,
      { timeout: 10_000 },
    );
  const enabled = (node: string) =>
    page.waitForFunction(
      (s) => (document.querySelector(s) as HTMLButtonElement | null)?.disabled === false,
      `${row(node)} .btn-drain`,
      {
        timeout: 10_000,
      },
    );

  it("a dead node's Drain is off; live ones' are on", async () => {
    await textIs(`${row('n1')} .node-state`, 'up');
    assert.equal(await page.textContent(`${row('n3')} .node-state`), 'dead');
    assert.equal(await disabled('n3'), true);
    assert.equal(await disabled('n1'), false);
    assert.equal(await disabled('n2'), false);
  });

  it('a drain in flight: the button is off, the row shows draining, then the ring it installed', async () => {
    await page.click(`${row('n2')} .btn-drain`);
    assert.equal(await note('n2'), 'draining…');
    assert.equal(await disabled('n2'), true);
    await textIs(`${row('n2')} .node-state`, 'draining');
    assert.deepEqual(drains, ['n2']);
    // A second click cannot send a second request.
    await page.click(`${row('n2')} .btn-drain`, { force: true });
    assert.deepEqual(drains, ['n2']);
    pending.resolve();
    await textIs(`${row('n2')} .drain-note`, 'drained (ring v2)');
    // The ring change rebuilt the rows; the note and the new state are there.
    await textIs(`${row('n2')} .node-state`, 'up');
    await enabled('n2');
    assert.equal(await note('n2'), 'drained (ring v2)');
    assert.deepEqual(drains, ['n2']);
  });

  it('a refused drain says why, inline in its row, and the button is on again', async () => {
    pending = deferred();
    await page.click(`${row('n1')} .btn-drain`);
    await textIs(`${row('n1')} .drain-note`, 'drain refused', true);
    assert.equal(
      await note('n1'),
      'drain refused — TS_ERR_INVALID_ARGUMENT: invalid argument: n1 is the last live node',
    );
    assert.match((await page.getAttribute(`${row('n1')} .drain-note`, 'class')) ?? '', /refused/);
    assert.equal(await disabled('n1'), false);
    assert.equal(await page.textContent(`${row('n1')} .node-state`), 'up');
    assert.deepEqual(drains, ['n2', 'n1']);
  });
});
