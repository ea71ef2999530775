/**
 * The headless Node worker (`tabshard worker --url …`) as a user runs it: a real cluster process,
 * a worker process that joins the job through the gateway, trains it to the end over WebRTC
 * data channels (@roamhq/wrtc), and exits; every task applied once. Evicted by the admin mid-job
 * (its scheduler session closed), it reopens the session as the same worker and still finishes
 * the job, every task applied once. A mistake on its command line is one line and exit status 2,
 * before it connects to anything.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './cli.ts';
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

  it('reopens its scheduler session when the admin evicts it, as the same worker, and finishes the job', async () => {
    let evict: () => void = () => {};
    let evicted = false;
    const { child, ready } = await startCluster({ startArgs: ['--shards', '4', '--iterations', '6'] }, (ev) => {
      if (ev.event === 'scheduler' && ev.ev === 'done' && !evicted) {
        evicted = true;
        evict();
      }
    });
    const worker = runWorkerCli(ready.gateway, ['--transport', 'ws']);
    evict = () => {
      // Its `worker` line comes through another pipe than the cluster's event: it may lag behind.
      const id = worker.line('worker')?.worker;
      if (id === undefined) return void setTimeout(evict, 20);
      fetch(`${ready.gateway}/api/jobs/1/workers/${id}/evict`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ready.adminToken}` },
      }).catch(() => {});
    };
    try {
      assert.equal(await worker.exit, 0);
      const id = worker.line('worker')!.worker;
      assert.equal(worker.line('reconnecting')!.retryInMs, 500);
      assert.deepEqual(worker.line('reconnected'), { event: 'reconnected', worker: id, reconnects: 1 });
      const finished = worker.line('finished')!;
      assert.equal(finished.state, 'done');
      assert.equal(finished.tasks, 24, 'every task done by this worker, over both sessions');
      const audit = await (await fetch(`${ready.gateway}/api/jobs/1/audit`)).json();
      assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [24, 24, 0, 0]);
    } finally {
      worker.kill();
      await stopCluster(child);
    }
  });

  it('says what is wrong with its command line in one line, exit status 2, before connecting', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--job', '1'], /^usage: tabshard worker --url/],
      [['--url', 'gateway:8080'], /^tabshard worker: --url must be http\(s\):\/\/host\[:port\]/],
      [
        ['--url', 'http://127.0.0.1:9', '--transport', 'tcp'],
        /^tabshard worker: --transport must be auto, webrtc or ws/,
      ],
      [['--url', 'http://127.0.0.1:9', '--slowdown', '0.5'], /^tabshard worker: --slowdown must be a number ≥ 1/],
      [['--url', 'http://127.0.0.1:9', '--stall', '5'], /^tabshard worker: --stall must be MS:EVERY/],
      [['--url', 'http://127.0.0.1:9', '--prefetch', '2'], /^tabshard worker: --prefetch must be 0 or 1/],
      [['--url', 'http://127.0.0.1:9', '--job', 'one'], /^tabshard worker: --job must be a job number/],
      [['--url', 'http://127.0.0.1:9', '--bogus'], /^tabshard worker: Unknown option '--bogus'/],
    ];
    await Promise.all(
      cases.map(async ([args, said]) => {
        const r = await runCli(['worker', ...args]);
        assert.equal(r.code, 2, args.join(' '));
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(lines[0], said);
        assert.equal(r.stdout, '');
      }),
    );
  });
});
