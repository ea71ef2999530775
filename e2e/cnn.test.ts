/**
 * The convolutional network end to end: `tabshard start --app cnn` and 2 headless Chromium tabs
 * on the worker page, each computing its tasks' gradients with tfjs autodiff on wasm in its Web
 * Worker and pushing the dense tables over WebRTC; every task applied once.
 *
 * The run uses the smaller model (8/16 filters: half the job's default step time) for 8 of the
 * job's 12 passes, so the suite stays short. That does not reach the job's 97 % target: after 12
 * passes 8/16 reaches 0.9645-0.9665 with 2 tabs (three runs; the default 16/32 reaches 0.971,
 * docs/results.md, `npm run bench:apps -- --apps cnn --shards 80`), ~0.96 after 8. So this test
 * holds it to 95 %, a bar it clears by a point, and to getting better pass over pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Harness } from './harness.ts';
import { type Audit, assertEveryTaskOnce, isDone, type JobStatus, working } from './jobs.ts';

describe('the CNN in browser tabs', { timeout: 300_000 }, () => {
  it('2 tabs train the convolutional network on handwritten digits past 95 % held-out accuracy', async (t) => {
    const h = await Harness.start({
      startArgs: ['--app', 'cnn', '--model', 'filters1=8,filters2=16', '--iterations', '8'],
    });
    try {
      const pages = await h.openPages(2, { path: '/?job=1' });
      const tabs = await working(pages);
      assert.deepEqual(
        tabs.map((s) => s.backend),
        ['wasm', 'wasm'],
      );
      await h.waitForEvent(isDone, 240_000);
      const status = await h.api<JobStatus>('/api/jobs/1');
      const audit = await h.api<Audit>('/api/jobs/1/audit');
      t.diagnostic(JSON.stringify(status.metrics.map((m) => [m.iteration, m.accuracy, m.ms])));
      assert.equal(status.app, 'cnn');
      assert.deepEqual(status.tables, ['conv1', 'conv2', 'out']);
      assert.equal(status.target.accuracy, 0.97);
      assertEveryTaskOnce(status, audit);
      const acc = status.metrics.map((m) => m.accuracy);
      assert.equal(acc.length, 8);
      assert.ok(acc.at(-1)! >= 0.95, `held-out accuracy ${acc.join(' → ')}`);
      assert.ok(acc.at(-1)! > acc[0] + 0.03, `held-out accuracy ${acc.join(' → ')}`);
      assert.ok(status.workers.every((w) => w.transport === 'webrtc' && w.tasksDone > 0));
      assert.match((await pages[0].locator('#about').textContent()) ?? '', /convolutional network/);
      for (const p of pages) assert.deepEqual(h.errors.get(p), []);
    } finally {
      await h.stop();
    }
  });
});
