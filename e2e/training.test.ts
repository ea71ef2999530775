/**
 * Training end to end: a real cluster (`tabshard start` with the spam logistic-regression job),
 * headless Chromium tabs on the worker page. Four tabs train the job to its held-out target
 * over WebRTC; a run survives tabs closing, crashing and hanging (every task applied exactly
 * once, the hung tab's lease returned within the heartbeat timeout + 1 s); a reloaded tab reads
 * its shards from IndexedDB; a tab without WebRTC trains over the ws relay.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { runCli } from './cli.ts';
import { Harness } from './harness.ts';
import { assertCompleted, iterationDone, type JobStatus, PROGRESS, type TabStatus, tab, working } from './jobs.ts';

/** Waits until the tab has done `n` tasks; on a timeout the error says what the tab and the cluster were doing. */
async function tasksDone(h: Harness, page: Page, n: number): Promise<void> {
  try {
    await page.waitForFunction((k) => (window as unknown as { tabshard: TabStatus }).tabshard.tasks >= k, n, PROGRESS);
  } catch (err) {
    const state = await tab(page).catch((e) => String(e));
    const last = h.events.slice(-25).map((e) => JSON.stringify(e));
    throw new Error(
      `the tab did not reach ${n} tasks: ${String(err)}\ntab: ${JSON.stringify(state)}\npage errors: ${JSON.stringify(h.errors.get(page) ?? [])}\nlast cluster events:\n${last.join('\n')}`,
    );
  }
}

/**
 * Freezes `page` at a moment it holds a lease (so its heartbeats stop while its socket stays
 * open). A tab between tasks holds none; then it is resumed and frozen again once it is back in
 * a task — arranging the precondition, not retrying a failure.
 */
async function freezeHoldingLease(h: Harness, page: Page): Promise<() => Promise<void>> {
  const { worker } = await tab(page);
  for (let i = 0; i < 50; i++) {
    await page.waitForFunction(
      () => (window as unknown as { tabshard: TabStatus }).tabshard.state !== 'waiting',
      null,
      PROGRESS,
    );
    const resume = await h.freezePage(page);
    const status = await h.api<JobStatus>('/api/jobs/1');
    if (status.workers.find((w) => w.worker === worker)?.leases) return resume;
    await resume();
  }
  throw new Error(`tab ${worker} never held a lease while frozen`);
}

describe('training in browser tabs', { timeout: 300_000 }, () => {
  it('4 tabs train the job to the held-out target over WebRTC data channels', async () => {
    const h = await Harness.start({ startArgs: ['--iterations', '6'] });
    try {
      const pages = await h.openPages(4, { path: '/?job=1' });
      const tabs = await working(pages);
      for (const t of tabs) {
        assert.equal(t.fallback, false);
        assert.deepEqual(new Set(Object.values(t.transports)), new Set(['webrtc']), JSON.stringify(t.transports));
      }
      const { status } = await assertCompleted(h);
      assert.equal(status.workers.length, 4);
      assert.ok(status.workers.every((w) => w.transport === 'webrtc' && w.tasksDone > 0));
      assert.equal(status.reassignments, 0);
    } finally {
      await h.stop();
    }
  });

  it('2 tabs train the text classifier (embedding rows sparse, dense layers dense) to its target', async () => {
    // On a cold data cache the job's preparation measures its push bounds in clean in-process
    // runs (apps/textnn/job.ts, ~27 s alone on this machine) before the cluster is ready.
    const h = await Harness.start({ startArgs: ['--app', 'textnn', '--iterations', '3'], startTimeoutMs: 180_000 });
    try {
      const pages = await h.openPages(2, { path: '/?job=1' });
      await working(pages);
      const { status } = await assertCompleted(h);
      assert.equal(status.app, 'textnn');
      const apps = await h.api<{ apps: Array<{ name: string }> }>('/api/apps');
      assert.deepEqual(
        apps.apps.map((a) => a.name),
        ['cms', 'cnn', 'lda', 'logreg', 'textnn'],
      );
      assert.deepEqual(status.tables, ['embedding', 'dense']);
      assert.ok(status.workers.every((w) => w.tasksDone > 0));
      for (const p of pages) assert.deepEqual(h.errors.get(p), []);
    } finally {
      await h.stop();
    }
  });

  it('2 tabs count the corpus into a Count-Min sketch (push-only tasks) within its (ε, δ) bound', async () => {
    const h = await Harness.start({ startArgs: ['--app', 'cms', '--shards', '8'] });
    try {
      const pages = await h.openPages(2, { path: '/?job=1' });
      await working(pages);
      const { status } = await assertCompleted(h);
      assert.equal(status.app, 'cms');
      assert.deepEqual(status.tables, ['sketch']);
      assert.ok(status.workers.every((w) => w.tasksDone > 0));
      const q = await h.api<{ estimate: number; exactPerPass: number; boundPerPass: number }>(
        '/api/jobs/1/query?item=the',
      );
      assert.ok(q.exactPerPass > 10_000 && q.estimate >= q.exactPerPass, JSON.stringify(q));
      assert.ok(q.estimate - q.exactPerPass <= q.boundPerPass, JSON.stringify(q));
      const about = (await pages[0].locator('#about').textContent()) ?? '';
      assert.match(about, /Count-Min sketch of 4 × 27183 counters/);
      for (const p of pages) assert.deepEqual(h.errors.get(p), []);
    } finally {
      await h.stop();
    }
  });

  it('2 stateless tabs find topics by Gibbs sampling (LDA) to the held-out perplexity target', async () => {
    // 8 of the job's 10 iterations: the target (7.65) is reached in the 6th (measured: 7.639; 7.604 in the 8th).
    const h = await Harness.start({
      startArgs: ['--app', 'lda', '--shards', '8', '--model', 'topics=8', '--iterations', '8'],
    });
    try {
      const pages = await h.openPages(2, { path: '/?job=1' });
      await working(pages);
      const { status } = await assertCompleted(h);
      assert.equal(status.app, 'lda');
      assert.deepEqual(status.tables, ['word-topic', 'topics', 'assignments']);
      const perplexity = status.metrics.map((m) => m.logLoss);
      assert.ok(perplexity.at(-1)! < perplexity[0], perplexity.join(' → '));
      assert.ok(status.workers.every((w) => w.tasksDone > 0));
      assert.match((await pages[0].locator('#about').textContent()) ?? '', /collapsed Gibbs sampling/);
      // The console shows the topics' top words (the job's insight), one row per topic of --model topics=8.
      const admin = await h.openPage({ path: '/admin' });
      await admin.fill('#token', h.cluster.adminToken);
      await admin.click('#login button[type=submit]');
      await admin.waitForFunction(() => document.querySelectorAll('table.insight tr').length === 8, null, PROGRESS);
      assert.match((await admin.locator('.insight-title').textContent()) ?? '', /Top words of the 8 topics/);
      pages.push(admin);
      for (const p of pages) assert.deepEqual(h.errors.get(p), []);
    } finally {
      await h.stop();
    }
  });

  it('an app or data set misnamed on the command line: one line on stderr, exit 1, nothing started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabshard-apps-'));
    try {
      const cases: Array<[string[], string]> = [
        [['--app', 'resnet'], 'tabshard: --app must be one of cms, cnn, lda, logreg, textnn'],
        [['--data', 'mnist'], 'tabshard: --app logreg: invalid argument: data must be spam or ctr, not "mnist"'],
        [
          ['--app', 'textnn', '--data', 'x'],
          'tabshard: --app textnn: invalid argument: data must be spam or ctr, not "x"',
        ],
        [
          ['--app', 'lda', '--model', 'topics=1'],
          'tabshard: --app lda: invalid argument: lda: topics must be in [2, 256], alpha and beta in (0, 100], vocab and stride positive integers (got {"topics":1,"alpha":0.5,"beta":0.05,"vocab":1,"stride":1})',
        ],
        [['--model', 'depth'], 'tabshard: --model must be name=number pairs joined by commas, not "depth"'],
        [['--model', 'hidden=4'], 'tabshard: --app logreg: invalid argument: logreg has no model setting hidden'],
      ];
      // The processes run at once: each refuses before it starts anything.
      const runs = cases.map(async ([args, line]) => {
        const r = await runCli(['start', ...args, '--data-dir', join(dir, 'data')]);
        assert.deepEqual([r.code, r.stderr], [1, `${line}\n`], args.join(' '));
      });
      await Promise.all(runs);
      assert.deepEqual(readdirSync(dir), [], 'no data directory made');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('survives churn: tabs closed, crashed and hung; new tabs finish; every task applied once', async () => {
    const leaseMs = 3000;
    const h = await Harness.start({
      startArgs: ['--iterations', '6', '--lease-ms', String(leaseMs), '--heartbeat-ms', '500'],
    });
    try {
      const first = await h.openPages(4, { path: '/?job=1' });
      await working(first);
      await h.waitForEvent(iterationDone(0), 120_000);
      const [a, b, c, d] = first;
      const resumeD = await freezeHoldingLease(h, d); // heartbeats stop, the socket stays open
      await h.closePage(a);
      await h.closePage(b);
      await h.crashPage(c);
      const expired = await h.waitForEvent(
        (ev) => ev.event === 'scheduler' && ev.ev === 'return' && ev.reason === 'expired',
      );
      assert.ok(
        (expired.sinceRenewMs as number) <= leaseMs + 1000,
        `lease returned ${expired.sinceRenewMs} ms after its last heartbeat`,
      );
      const late = await h.openPages(2, { path: '/?job=1' });
      await working(late);
      await resumeD(); // its late push and done are refused (fenced); it carries on with new tasks
      const { status } = await assertCompleted(h);
      const returns = h.events.filter((ev) => ev.event === 'scheduler' && ev.ev === 'return');
      assert.ok(returns.length >= 1 && status.reassignments === returns.length);
      console.log(
        `churn: ${returns.length} tasks returned (${returns.map((r) => r.reason).join(', ')}); expired lease returned ${expired.sinceRenewMs} ms after its last heartbeat (lease ${leaseMs} ms)`,
      );
    } finally {
      await h.stop();
    }
  });

  it('a reloaded tab reads its shards from IndexedDB; a tab without WebRTC trains over ws', async () => {
    const h = await Harness.start({ startArgs: ['--shards', '4', '--iterations', '40'] });
    try {
      const page = await h.openPage({ path: '/?job=1' });
      await working([page]);
      await h.waitForEvent(iterationDone(0), 120_000);
      const before = await tab(page);
      assert.equal(before.downloads, 4); // one tab did every task of iteration 0
      const shardRequests: string[] = [];
      page.on('request', (r) => r.url().includes('/shards/') && shardRequests.push(r.url()));
      await page.reload();
      await working([page]);
      await tasksDone(h, page, 4);
      const after = await tab(page);
      assert.deepEqual(shardRequests, []);
      assert.equal(after.downloads, 0);
      assert.ok(after.cacheHits >= 4);

      const blocked = await h.openPage({ path: '/?job=1&iceTimeoutMs=2000', blockWebRtc: 'throw', ownContext: true });
      const [s] = await working([blocked]);
      assert.equal(s.fallback, true);
      assert.deepEqual(new Set(Object.values(s.transports)), new Set(['ws']));
      await tasksDone(h, blocked, 2);
      const status = await h.api<JobStatus>('/api/jobs/1');
      assert.ok(status.workers.some((w) => w.transport === 'ws' && w.tasksDone >= 2));
      await h.api('/api/jobs/1/stop', { method: 'POST', headers: { authorization: `Bearer ${h.cluster.adminToken}` } });
    } finally {
      await h.stop();
    }
  });
});
