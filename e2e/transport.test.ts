/**
 * Browser transports end to end: a real 3-node cluster (`tabshard start`), headless Chromium
 * tabs on the lab page, the gateway's relays. A tab reaches every node over a WebRTC data
 * channel; a tab with WebRTC blocked falls back to the ws relay and says so; malformed
 * signalling and data frames get coded errors while another tab keeps working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Harness } from './harness.ts';

/** What the lab page exposes (e2e/lab/lab.ts), as far as these tests use it. */
interface DialRecord {
  node: string;
  kind: 'webrtc' | 'ws';
  ms: number;
  fallbackReason?: string;
}
interface RawResult {
  messages: Array<{ text?: string; bytes?: number; errorCode?: string }>;
  close?: { code: number; reason: string };
}
type LabKeys = number[] | { begin: number; end: number };
interface Lab {
  connect(o?: {
    job?: number;
    webrtcTimeoutMs?: number;
    adminToken?: string;
  }): Promise<{ nodes: string[]; tables: string[] }>;
  transports(): Record<string, DialRecord>;
  push(table: string, keys: LabKeys, values: number[]): Promise<void>;
  pull(table: string, keys: LabKeys): Promise<number[]>;
  raw(
    route: 'signal' | 'data',
    node: string,
    message: string | number[],
    until?: 'close' | 'message',
  ): Promise<RawResult>;
}
type LabWindow = { tabshardLab: Lab };

/** The lab pushes ad hoc, which the nodes take only from an admin: it gets the cluster's token. */
let adminToken = '';
const connect = (page: Page, webrtcTimeoutMs = 3000) =>
  page.evaluate(
    ([t, token]) => (window as unknown as LabWindow).tabshardLab.connect({ webrtcTimeoutMs: t, adminToken: token }),
    [webrtcTimeoutMs, adminToken] as const,
  );
const transports = (page: Page) => page.evaluate(() => (window as unknown as LabWindow).tabshardLab.transports());
const push = (page: Page, table: string, keys: LabKeys, values: number[]) =>
  page.evaluate(([t, k, v]) => (window as unknown as LabWindow).tabshardLab.push(t, k, v), [
    table,
    keys,
    values,
  ] as const);
const pull = (page: Page, table: string, keys: LabKeys) =>
  page.evaluate(([t, k]) => (window as unknown as LabWindow).tabshardLab.pull(t, k), [table, keys] as const);
const raw = (
  page: Page,
  route: 'signal' | 'data',
  node: string,
  message: string | number[],
  until?: 'close' | 'message',
) =>
  page.evaluate(([r, n, m, u]) => (window as unknown as LabWindow).tabshardLab.raw(r, n, m, u), [
    route,
    node,
    message,
    until,
  ] as const);

/** Pushes to every demo table and reads back; the whole dense range touches every node. */
async function roundTrip(page: Page, seed: number): Promise<void> {
  const keys = [seed, seed + 1000, 2 ** 23 + seed, 2 ** 24 - 1 - seed];
  await push(page, 'sum-sparse', keys, [1, 2, 3, 4]);
  await push(page, 'sum-sparse', keys, [1, 2, 3, 4]);
  assert.deepEqual(await pull(page, 'sum-sparse', keys), [2, 4, 6, 8]);

  const begin = seed * 10_000;
  const n = 5000;
  const ramp = Array.from({ length: n }, (_, i) => (i % 17) - 8);
  await push(page, 'sum-dense', { begin, end: begin + n }, ramp);
  assert.deepEqual(await pull(page, 'sum-dense', { begin, end: begin + n }), ramp);
  const all = await page.evaluate(async () => {
    const v = await (window as unknown as LabWindow).tabshardLab.pull('sum-dense', { begin: 0, end: 1 << 20 });
    return v.length;
  });
  assert.equal(all, 1 << 20);

  // The demo tables with real updaters: sgd (lr 0.1) on zeros gives -0.1·g; ftrl stays finite.
  await push(page, 'dense', { begin, end: begin + 4 }, [1, -2, 3, 0]);
  const w = await pull(page, 'dense', { begin, end: begin + 4 });
  for (const [i, g] of [1, -2, 3, 0].entries()) assert.ok(Math.abs(w[i] + 0.1 * g) < 1e-6, `dense[${i}] = ${w[i]}`);
  await push(page, 'weights', keys, [0.5, -0.5, 1, -1]);
  const f = await pull(page, 'weights', keys);
  assert.equal(f.length, 4);
  assert.ok(f.every(Number.isFinite));
}

describe('browser transports (3 nodes, Chromium)', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ nodes: 3 });
    adminToken = h.cluster.adminToken;
  });
  after(async () => {
    await h?.stop();
  });

  it('a tab reaches every node over a WebRTC data channel and reads back what it pushed', async (t) => {
    const page = await h.openPage();
    t.after(() => page.close());
    const info = await connect(page);
    assert.deepEqual(info.nodes.sort(), ['n1', 'n2', 'n3']);
    assert.ok(info.tables.includes('sum-sparse') && info.tables.includes('sum-dense'));
    await roundTrip(page, 1);
    const used = await transports(page);
    assert.deepEqual(Object.keys(used).sort(), ['n1', 'n2', 'n3']);
    for (const r of Object.values(used)) assert.equal(r.kind, 'webrtc', `${r.node}: ${r.fallbackReason}`);
    const ms = Object.values(used).map((r) => r.ms);
    console.log(JSON.stringify({ e2e: 'webrtc-connect', nodes: 3, ms, page: 'lab' }));
    assert.match((await page.locator('#node-n1').textContent()) ?? '', /WebRTC data channel/);
    assert.deepEqual(h.errors.get(page), []);
  });

  for (const mode of ['throw', 'silent'] as const) {
    it(`a tab whose WebRTC ${mode === 'throw' ? 'throws' : 'never connects'} works over the ws relay and says so`, async (t) => {
      const page = await h.openPage({ blockWebRtc: mode });
      t.after(() => page.close());
      await connect(page, 1500);
      await roundTrip(page, mode === 'throw' ? 2 : 3);
      const used = await transports(page);
      assert.deepEqual(Object.keys(used).sort(), ['n1', 'n2', 'n3']);
      for (const r of Object.values(used)) {
        assert.equal(r.kind, 'ws');
        assert.match(r.fallbackReason ?? '', /TS_ERR_CONNECT_FAILED/);
      }
      if (mode === 'silent') for (const r of Object.values(used)) assert.ok(r.ms >= 1500, `fell back after ${r.ms} ms`);
      assert.match((await page.locator('#node-n2').textContent()) ?? '', /WebSocket relay — WebRTC failed/);
    });
  }

  it('malformed signalling and data frames get coded errors while another tab keeps working', async (t) => {
    const [bad, good] = await h.openPages(2);
    t.after(async () => {
      await bad.close();
      await good.close();
    });
    await connect(good);
    await roundTrip(good, 4);

    const bytes = (s: string) => Array.from(new TextEncoder().encode(s));
    const sig = await raw(bad, 'signal', 'n1', bytes('{"type":"offer"'));
    const errorSignal = sig.messages.map((m) => (m.text ? JSON.parse(m.text) : null)).find((m) => m?.type === 'error');
    assert.equal(errorSignal?.code, 'TS_ERR_FRAME_MALFORMED');
    assert.ok(sig.close);
    const bogus = await raw(bad, 'signal', 'n2', bytes('{"type":"answer"}'));
    assert.equal(JSON.parse(bogus.messages[0].text!).code, 'TS_ERR_FRAME_MALFORMED');
    await roundTrip(good, 5);

    const junk = await raw(bad, 'data', 'n3', [1, 2, 3, 4, 5, 6, 7, 8, 9], 'message');
    assert.match(junk.messages[0].errorCode ?? '', /^TS_ERR_FRAME_/);
    const text = await raw(bad, 'data', 'n3', 'not a frame');
    assert.equal(text.close?.code, 4000);
    assert.match(text.close?.reason ?? '', /^TS_ERR_FRAME_MALFORMED/);
    const unknown = await raw(bad, 'data', 'n9', [1]);
    assert.match(unknown.close?.reason ?? '', /^TS_ERR_CONNECT_FAILED/);
    await roundTrip(good, 6);
    const used = await transports(good);
    for (const r of Object.values(used)) assert.equal(r.kind, 'webrtc');
  });
});
