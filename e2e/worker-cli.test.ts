/**
 * The headless Node worker (`tabshard worker --url …`) as a user runs it: a real cluster process,
 * a worker process that joins the job through the gateway, trains it to the end over WebRTC
 * data channels (@roamhq/wrtc), and exits; every task applied once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWorkerCli, startCluster, stopCluster } from './harness.ts';

describe('tabshard worker', { timeout: 180_000 }, () => {
  it('trains the job from the command line and exits when it is done', async () => {
    let lastMetric: (iteration: number) => void = () => {};
    const evaluated = new Promise<void>((resolve) => {
      lastMetric = (i) => i === 2 && resolve();
    });
    const metrics: number[] = [];
    const { child, ready } = await startCluster({ startArgs: ['--shards', '4', '--iterations', '3'] }, (ev) => {
      if (ev.event !== 'metric') return;
      metrics.push(ev.iteration as number);
      lastMetric(ev.iteration as number);
    });
    const worker = runWorkerCli(ready.gateway);
    try {
      assert.equal(await worker.exit, 0);
      const hello = worker.line('worker')!;
      assert.deepEqual(Object.values(hello.transports as object), ['webrtc', 'webrtc', 'webrtc']);
      const finished = worker.line('finished')!;
      assert.equal(finished.state, 'done');
      assert.equal(finished.tasks, 12);
      const audit = await (await fetch(`${ready.gateway}/api/jobs/1/audit`)).json();
      assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [12, 12, 0, 0]);
      await evaluated; // the held-out evaluation of the last iteration follows its last task
      assert.deepEqual(metrics, [0, 1, 2]);
    } finally {
      worker.kill();
      await stopCluster(child);
    }
  });
});
