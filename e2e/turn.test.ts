/**
 * Workers whose network lets only TURN through: a real coturn (use-auth-secret) and a cluster
 * started with `--ice-servers turn:… --turn-secret …`. A headless Node worker with `--relay-only`
 * and a worker-page tab opened with `?relay=1` (relayed candidates only, as behind a NAT that
 * blocks UDP to the nodes) train the demo job to its end through the TURN server, each reporting
 * `turn` for every node; every task is applied once. The cluster hands out TURN credentials that
 * expire, never the secret.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCoturn } from './coturn.ts';
import { Harness, runWorkerCli } from './harness.ts';

const SECRET = 'e2e-turn-secret';

describe('training through TURN', { timeout: 240_000 }, () => {
  let turn: Awaited<ReturnType<typeof startCoturn>>;
  let h: Harness;
  before(async () => {
    turn = await startCoturn(SECRET);
    h = await Harness.start({
      startArgs: ['--shards', '4', '--iterations', '3', '--ice-servers', turn.url, '--turn-secret', SECRET],
    });
  });
  after(async () => {
    await h?.stop();
    await turn?.stop();
  });

  it('hands each tab TURN credentials that expire, derived from the secret, and never the secret', async () => {
    const res = await fetch(`${h.gateway}/api/jobs/1/cluster`);
    const text = await res.text();
    assert.ok(!text.includes(SECRET));
    const { iceServers } = JSON.parse(text) as {
      iceServers: Array<{ urls: string; username: string; credential: string }>;
    };
    assert.equal(iceServers.length, 1);
    const [s] = iceServers;
    assert.equal(s.urls, turn.url);
    const expiry = Number(s.username.split(':')[0]);
    const left = expiry - Date.now() / 1000;
    assert.ok(left > 3500 && left <= 3600, `credentials live an hour (${left} s)`);
    assert.equal(s.credential, createHmac('sha1', SECRET).update(s.username).digest('base64'));
  });

  it('a relay-only Node worker and a relay-only tab train the job through TURN', async () => {
    const page = await h.openPage({ path: '/?job=1&relay=1' });
    const worker = runWorkerCli(h.gateway, ['--relay-only']);
    try {
      assert.equal(await worker.exit, 0);
      const hello = worker.line('worker')!;
      assert.deepEqual(Object.values(hello.routes as object), ['turn', 'turn', 'turn']);
      assert.equal(worker.line('finished')!.state, 'done');
      await h.waitForEvent((ev) => ev.event === 'metric' && ev.iteration === 2, 60_000);
      const tab = (await page.evaluate(() => (globalThis as unknown as { tabshard: unknown }).tabshard)) as {
        transports: Record<string, string>;
        tasks: number;
      };
      assert.deepEqual(Object.values(tab.transports), ['turn', 'turn', 'turn']);
      const audit = await (await fetch(`${h.gateway}/api/jobs/1/audit`)).json();
      assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [12, 12, 0, 0]);
      assert.ok(tab.tasks >= 1, 'the tab did some of the work');
      // The console's per-worker transport says so too.
      const status = (await (await fetch(`${h.gateway}/api/jobs/1`)).json()) as {
        workers: Array<{ transport: string }>;
      };
      assert.deepEqual(
        status.workers.map((w) => w.transport),
        ['turn', 'turn'],
      );
    } finally {
      worker.kill();
    }
  });
});
