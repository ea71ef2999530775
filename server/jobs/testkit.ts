/**
 * Test support for jobs run end to end in one process (imported by *.test.ts only): server nodes
 * enforcing capabilities and sealing receipts on the memory network, the manager, a job's driver
 * (any registered application; the spam LR job by default), and workers running the tab's task loop over scheduler sessions.
 */
import * as tf from '@tensorflow/tfjs';
import { jobApp } from '../../apps/jobs.ts';
import { bindApp } from '../../apps/workers.ts';
import { TaskRunner } from '../../client/runner.ts';
import type { RunnerOptions } from '../../client/runner-types.ts';
import { SchedulerSession } from '../../client/session.ts';
import { initTf } from '../../client/tf-backend.ts';
import { Worker } from '../../client/worker.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { CapabilitySigner } from '../auth/capability.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { ServerManager } from '../manager.ts';
import { ServerNode } from '../node/node.ts';
import { type DriverConfig, JobDriver } from './driver.ts';

const TOKEN = 'job-test-token';

/** Two nodes, the manager and job 1 of `app` (default logreg, on `shards` spam shards) under `config`, started. */
export async function inProcessJob(o: { seed: number; shards: number; config: DriverConfig; app?: string }) {
  const net = new MemoryNetwork({ seed: o.seed });
  const signer = CapabilitySigner.generate();
  const nodes = ['n1', 'n2'].map((id) => new ServerNode(id, { adminToken: TOKEN }));
  for (const n of nodes) n.listen(net.listen(n.id));
  const manager = new ServerManager(
    net.dialer(),
    nodes.map((n) => ({ id: n.id, addresses: { memory: `memory://${n.id}` }, control: `memory://${n.id}` })),
    { adminToken: TOKEN, capabilityKey: signer.publicKey() },
  );
  await manager.start();
  const app = await jobApp(o.app ?? 'logreg').prepare({ job: 1, shards: o.shards });
  const driver = new JobDriver(app, manager, o.config, null, signer, new ReceiptKey(TOKEN));
  const sched = net.listen('sched');
  sched.onconnection = (conn) => driver.scheduler.serve(conn);
  await driver.start();
  await initTf(tf, { prefer: ['wasm'] });
  const math = bindApp({ app: app.app, tables: app.tables.map((t) => t.name), model: app.model });
  /** One worker's whole run (the tab's task loop with `extra` options); resolves with its totals. */
  const run = async (extra: Partial<RunnerOptions<DecodedShard>> = {}) => {
    const session = await SchedulerSession.open(await net.dialer().dial('memory://sched'), { agent: 'test' });
    const worker = await Worker.connect({ seed: async () => manager.info, dialers: { memory: net.dialer() }, job: 1 });
    try {
      return await new TaskRunner<DecodedShard>({
        worker,
        session,
        auditTable: 'tasks',
        app: {
          shard: async (i) => decodeShard(app.shards[i]),
          pulls: (s) => math.pulls(s),
          gradient: (s, v) => math.gradient(tf, s, v),
        },
        ...extra,
      }).run();
    } finally {
      session.close();
      worker.close();
    }
  };
  const close = async () => {
    driver.scheduler.stop();
    manager.close();
    await Promise.all(nodes.map((n) => n.close()));
  };
  return { net, nodes, manager, driver, run, close };
}
