/**
 * A job whose tables hold their pushes (`aggregate`, PROTOCOL.md §6 TABLE `hold`), end to end in
 * one process: two server nodes enforcing capabilities on the memory network, the manager, the
 * spam job's driver with the median rule, and two workers running the tab's task loop over
 * scheduler sessions. Every task is counted once (receipts), each node released each iteration
 * once and holds nothing at the end, and the model learns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { appGradient, appPulls } from '../../client/apps/app.ts';
import { initTf } from '../../client/apps/tf-backend.ts';
import { TaskRunner } from '../../client/runner.ts';
import { SchedulerSession } from '../../client/session.ts';
import { Worker } from '../../client/worker.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { CapabilitySigner } from '../auth/capability.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { ServerManager } from '../manager.ts';
import type { HeldStats } from '../node/held.ts';
import { ServerNode } from '../node/node.ts';
import { JobDriver } from './driver.ts';
import { prepareLogregJob } from './logreg.ts';

const TOKEN = 'hold-test-token';

describe('a job with held aggregation', () => {
  it('trains with the median rule: each iteration released once on every node, every task counted once', async () => {
    const net = new MemoryNetwork({ seed: 21 });
    const signer = CapabilitySigner.generate();
    const nodes = ['n1', 'n2'].map((id) => new ServerNode(id, { adminToken: TOKEN }));
    for (const n of nodes) n.listen(net.listen(n.id));
    const manager = new ServerManager(
      net.dialer(),
      nodes.map((n) => ({ id: n.id, addresses: { memory: `memory://${n.id}` }, control: `memory://${n.id}` })),
      { adminToken: TOKEN, capabilityKey: signer.publicKey() },
    );
    await manager.start();
    const app = await prepareLogregJob({ job: 1, shards: 4 });
    const driver = new JobDriver(
      app,
      manager,
      { iterations: 3, tau: 0, aggregate: { rule: 'median' } },
      null,
      signer,
      new ReceiptKey(TOKEN),
    );
    const released: number[] = [];
    driver.listen({
      log: (e) => (e as { ev?: string }).ev === 'released' && released.push((e as { clock: number }).clock),
    });
    const sched = net.listen('sched');
    sched.onconnection = (conn) => driver.scheduler.serve(conn);
    await driver.start();
    await initTf(tf, { prefer: ['wasm'] });
    const info = { app: 'logreg' as const, tables: ['weights'] };
    const run = async () => {
      const session = await SchedulerSession.open(await net.dialer().dial('memory://sched'), { agent: 'test' });
      const worker = await Worker.connect({
        seed: async () => manager.info,
        dialers: { memory: net.dialer() },
        job: 1,
      });
      try {
        return await new TaskRunner<DecodedShard>({
          worker,
          session,
          auditTable: 'tasks',
          app: {
            shard: async (i) => decodeShard(app.shards[i]),
            pulls: (s) => appPulls(info, s),
            gradient: (s, v) => appGradient(tf, info, s, v),
          },
        }).run();
      } finally {
        session.close();
        worker.close();
      }
    };
    try {
      const totals = await Promise.all([run(), run()]);
      assert.deepEqual(
        totals.map((t) => t.state),
        ['done', 'done'],
      );
      assert.equal(totals[0].tasks + totals[1].tasks, 12);
      await driver.settle();
      assert.deepEqual(released, [1, 2, 3]);
      assert.deepEqual(await driver.auditTasks(), { tasks: 12, missing: 0, once: 12, more: 0 });
      const m = driver.metrics;
      assert.ok(m.at(-1)!.logLoss < m[0].logLoss, JSON.stringify(m));
      const stats = (await manager.stats()) as Array<{
        tables: Array<{ job: number; name: string; held?: HeldStats }>;
      }>;
      for (const n of stats) {
        const w = n.tables.find((t) => t.job === 1 && t.name === 'weights')!;
        assert.deepEqual({ ...w.held, bytes: 0 }, { pushes: 0, bytes: 0, released: 3, dropped: 0 });
        assert.equal(w.held!.bytes, 0);
      }
      assert.equal(
        driver.status().workers.reduce((s, w) => s + w.tasksRefused, 0),
        0,
      );
    } finally {
      driver.scheduler.stop();
      manager.close();
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
