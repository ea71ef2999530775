/**
 * Less traffic from browser tabs (`tabshard start --push-values q8 --pull-values f16 --compress --push-threshold 0.05`,
 * PROTOCOL.md §3.4): two worker-page tabs train the demo job with the job's traffic options sent
 * with every task; the tabs push Q8 values with error feedback (fflate deflating them), the nodes
 * answer their pulls with deflated halves, and the job still reaches its held-out target. A tab's
 * own byte counts show it: float32 pushes alone would cost 4 bytes per value pulled (a task
 * pushes one gradient value per value it pulls), float32 replies 4 bytes per value.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './cli.ts';
import { Harness } from './harness.ts';
import { assertCompleted, tab } from './jobs.ts';

describe('traffic options in browser tabs', { timeout: 300_000 }, () => {
  it('two tabs train the demo job on filtered q8 pushes and deflated f16 pulls to its target', async () => {
    const h = await Harness.start({
      startArgs: [
        '--iterations',
        '8',
        '--push-values',
        'q8',
        '--pull-values',
        'f16',
        '--compress',
        '--push-threshold',
        '0.5',
      ],
    });
    try {
      const pages = await h.openPages(2, { path: '/?job=1' });
      await assertCompleted(h);
      const tabs = await Promise.all(pages.map((p) => tab(p)));
      const pulled = tabs.reduce((n, t) => n + t.pulledValues, 0);
      const sent = tabs.reduce((n, t) => n + t.bytes.sent, 0);
      const received = tabs.reduce((n, t) => n + t.bytes.received, 0);
      assert.ok(pulled > 0);
      assert.ok(sent < 3 * pulled, `sent ${sent} B for ${pulled} values pulled`);
      assert.ok(received < 2 * pulled, `received ${received} B for ${pulled} values pulled`);
      for (const p of pages) assert.deepEqual(h.errors.get(p) ?? [], [], 'no page errors');
    } finally {
      await h.stop();
    }
  });

  it('a traffic option misspelt on the command line: one line on stderr, exit 1, nothing started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabshard-traffic-'));
    try {
      const cases = [
        ['--push-values', 'f8', 'tabshard: --push-values must be f32, f16 or q8'],
        ['--pull-values', 'q8', 'tabshard: --pull-values must be f32 or f16'],
        ['--push-threshold', 'lots', 'tabshard: --push-threshold must be a number ≥ 0'],
        ['--push-threshold', 'Infinity', 'tabshard: --push-threshold must be a number ≥ 0'],
        ['--push-threshold-rms', 'half', 'tabshard: --push-threshold-rms must be a number ≥ 0'],
      ];
      await Promise.all(
        cases.map(async ([flag, value, line]) => {
          const r = await runCli(['start', flag, value, '--data-dir', join(dir, 'data')]);
          assert.deepEqual([r.code, r.stderr], [1, `${line}\n`], flag);
        }),
      );
      assert.deepEqual(readdirSync(dir), [], 'no data directory made');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
