/**
 * Scale (issue 3 target): 16 worker-page tabs in one headless Chromium on this 2-core machine
 * join one job and all make progress — each gets a scheduler worker id and completes at least
 * one task — over WebRTC data channels. Prints one JSON line with the times and memory.
 * The measured version (steady window, tasks/s, CPU) is `npm run bench:scale`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Harness } from './harness.ts';

interface TabStatus {
  worker?: number;
  transports: Record<string, string>;
  fallback: boolean;
  tasks: number;
  error?: string;
}

const TABS = 16;
const tab = (page: Page) => page.evaluate(() => (window as unknown as { tabshard: TabStatus }).tabshard);

describe('scale', { timeout: 180_000 }, () => {
  it(`${TABS} tabs on 2 cores join one job and each completes a task over WebRTC`, async () => {
    const h = await Harness.start({ startArgs: ['--iterations', '100000'], startTimeoutMs: 60_000 });
    try {
      const t0 = performance.now();
      // 16 tabs dial 3 nodes at once on 2 cores: a handshake may take longer than the page's
      // default 4 s before it falls back to the relay; this test is about WebRTC, so it waits.
      const pages = await h.openPages(TABS, { path: '/?job=1&iceTimeoutMs=20000' });
      await Promise.all(
        pages.map((p) =>
          p.waitForFunction(
            () => {
              const s = (window as unknown as { tabshard?: TabStatus }).tabshard;
              if (s?.error) throw new Error(s.error);
              return s?.worker !== undefined && s.tasks >= 1;
            },
            undefined,
            { timeout: 120_000, polling: 250 },
          ),
        ),
      );
      const ms = Math.round(performance.now() - t0);
      const tabs = await Promise.all(pages.map(tab));
      const mem = h.memory();
      const workers = new Set(tabs.map((t) => t.worker));
      assert.equal(workers.size, TABS, 'every tab has its own scheduler worker id');
      for (const t of tabs) {
        assert.equal(t.fallback, false);
        assert.deepEqual(new Set(Object.values(t.transports)), new Set(['webrtc']), JSON.stringify(t.transports));
      }
      const status = await h.api<{ workers: Array<{ transport: string; connected: boolean; tasksDone: number }> }>(
        '/api/jobs/1',
      );
      const live = status.workers.filter((w) => w.connected);
      assert.equal(live.length, TABS);
      assert.ok(live.every((w) => w.transport === 'webrtc' && w.tasksDone >= 1));
      console.log(
        JSON.stringify({
          e2e: 'scale',
          tabs: TABS,
          all_progressed_ms: ms,
          tasks_per_tab: tabs.map((t) => t.tasks),
          browser_pss_mb: Math.round(mem.browser.pssKb / 1024),
          cluster_rss_mb: Math.round(mem.cluster.rssKb / 1024),
        }),
      );
    } finally {
      await h.stop();
    }
  });
});
