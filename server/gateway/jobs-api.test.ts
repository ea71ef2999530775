/**
 * The job API against a real job: two server nodes on the memory network, the server manager,
 * the spam job's driver (real data, 4 shards) and the gateway. REST routes through `inject()`;
 * the scheduler session over a real WebSocket, driving the same task loop a tab runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import WebSocket from 'ws';
import { prepareLogregJob } from '../../apps/logreg/job.ts';
import { bindApp, parseAppInfo } from '../../apps/workers.ts';
import { TaskRunner } from '../../client/runner.ts';
import { SchedulerSession } from '../../client/session.ts';
import { initTf } from '../../client/tf-backend.ts';
import { type WebSocketCtor, WsDialer } from '../../client/transports/ws.ts';
import { Worker } from '../../client/worker.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { CapabilitySigner } from '../auth/capability.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { JobDriver } from '../jobs/driver.ts';
import { ServerManager } from '../manager.ts';
import { ServerNode } from '../node/node.ts';
import { buildApp } from './app.ts';

const TOKEN = 'test-admin-token';
/** The cluster's signer: the nodes check every push and read against the capabilities the scheduler signs. */
const signer = CapabilitySigner.generate();

describe('job API', () => {
  const net = new MemoryNetwork({ seed: 5 });
  const nodes = ['n1', 'n2'].map((id) => new ServerNode(id, { adminToken: TOKEN }));
  let manager: ServerManager;
  let driver: JobDriver;
  let app: ReturnType<typeof buildApp>;

  before(async () => {
    for (const n of nodes) n.listen(net.listen(n.id));
    manager = new ServerManager(
      net.dialer(),
      nodes.map((n) => ({ id: n.id, addresses: { memory: `memory://${n.id}` }, control: `memory://${n.id}` })),
      { adminToken: TOKEN, capabilityKey: signer.publicKey() },
    );
    await manager.start();
    driver = new JobDriver(
      await prepareLogregJob({ job: 1, shards: 4 }),
      manager,
      { iterations: 2, tau: 0 },
      null,
      signer,
      new ReceiptKey(TOKEN),
    );
    await driver.start();
    app = buildApp({
      cluster: () => manager.info,
      stats: () => manager.stats(),
      jobs: () => [driver],
      adminToken: TOKEN,
    });
  });

  after(async () => {
    driver.scheduler.stop();
    await app.close();
    manager.close();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('describes the job and serves its shards with an ETag', async () => {
    const list = (await app.inject('/api/jobs')).json();
    assert.deepEqual(
      list.jobs.map((j: { job: number; state: string }) => [j.job, j.state]),
      [[1, 'running']],
    );
    const job = (await app.inject('/api/jobs/1')).json();
    assert.equal(job.version, driver.app.version);
    assert.equal(job.shards, 4);
    assert.deepEqual([job.app, job.tables], ['logreg', ['weights']]);
    const res = await app.inject('/api/jobs/1/shards/2');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(new Uint8Array(res.rawPayload), driver.app.shards[2]);
    assert.equal(decodeShard(new Uint8Array(res.rawPayload)).index, 2);
    const again = await app.inject({ url: '/api/jobs/1/shards/2', headers: { 'if-none-match': res.headers.etag } });
    assert.equal(again.statusCode, 304);
  });

  it('answers unknown jobs and shards and bad parameters with coded errors', async () => {
    const cases: Array<[string, number, string]> = [
      ['/api/jobs/9', 404, 'TS_ERR_UNKNOWN_JOB'],
      ['/api/jobs/1/shards/4', 404, 'TS_ERR_UNKNOWN_SHARD'],
      ['/api/jobs/x', 400, 'TS_ERR_INVALID_ARGUMENT'],
      ['/api/jobs/1/shards/-1', 400, 'TS_ERR_INVALID_ARGUMENT'],
    ];
    for (const [url, status, code] of cases) {
      const res = await app.inject(url);
      assert.equal(res.statusCode, status, url);
      assert.equal(res.json().code, code, url);
    }
  });

  it('changes τ only with the admin token', async () => {
    const put = (headers: Record<string, string>, tau: unknown) =>
      app.inject({ method: 'PUT', url: '/api/jobs/1/tau', headers, payload: { tau } });
    assert.equal((await put({}, 2)).statusCode, 401);
    assert.equal((await put({ authorization: 'Bearer wrong' }, 2)).statusCode, 403);
    assert.equal((await put({ authorization: `Bearer ${TOKEN}` }, -1)).statusCode, 400);
    assert.equal(driver.scheduler.status().tau, 0);
    assert.equal((await put({ authorization: `Bearer ${TOKEN}` }, null)).statusCode, 200);
    assert.equal(driver.scheduler.status().tau, null);
    assert.equal((await put({ authorization: `Bearer ${TOKEN}` }, 0)).statusCode, 200);
    assert.equal(driver.scheduler.status().tau, 0);
  });

  it('runs the job over a WebSocket scheduler session: every task applied once, the model learns', async () => {
    const gateway = await app.listen({ host: '127.0.0.1', port: 0 });
    await initTf(tf, { prefer: ['wasm'] });
    const ws = new WsDialer(WebSocket as unknown as WebSocketCtor);
    const session = await SchedulerSession.open(await ws.dial(`${gateway.replace('http', 'ws')}/api/jobs/1/session`), {
      agent: 'test',
      transport: 'memory',
    });
    // The layout as the gateway knows it (the nodes answer RING only with a capability).
    const worker = await Worker.connect({ seed: async () => manager.info, dialers: { memory: net.dialer() }, job: 1 });
    const info = parseAppInfo((await app.inject('/api/jobs/1')).json());
    assert.deepEqual(info, { app: 'logreg', tables: ['weights'] });
    const math = bindApp(info);
    const runner = new TaskRunner<DecodedShard>({
      worker,
      session,
      auditTable: 'tasks',
      app: {
        async shard(i) {
          return decodeShard(new Uint8Array((await app.inject(`/api/jobs/1/shards/${i}`)).rawPayload));
        },
        pulls: (s) => math.pulls(s),
        gradient: (s, v) => math.gradient(tf, s, v),
      },
    });
    const totals = await runner.run();
    session.close();
    worker.close();
    assert.equal(totals.state, 'done');
    assert.equal(totals.tasks, 8);
    await driver.settle();
    assert.deepEqual(await driver.auditTasks(), { tasks: 8, missing: 0, once: 8, more: 0 });
    const m = driver.metrics;
    assert.deepEqual(
      m.map((x) => x.iteration),
      [0, 1],
    );
    assert.ok(m[1].logLoss < m[0].logLoss && m[1].accuracy > 0.9, JSON.stringify(m));
    const status = (await app.inject('/api/jobs/1')).json();
    assert.equal(status.state, 'done');
    assert.equal(status.workers[0].tasksDone, 8);
    assert.equal(status.workers[0].tasksRefused, 0, 'every TASK_DONE carried receipts covering its pushes');
    assert.equal(status.workers[0].transport, 'memory');
    // Every push went through a capability: the nodes refused none and checked the shards' key sets.
    const stats = (await manager.stats()) as Array<{
      access: { caps: number; refused: Record<string, number> };
      keySets: { sets: number };
    }>;
    for (const n of stats) {
      assert.deepEqual(n.access.refused, {});
      assert.ok(n.access.caps > 0);
      assert.equal(n.keySets.sets, 4, 'one key set per shard on every node');
    }
  });
});
