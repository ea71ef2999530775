/**
 * The embedded cluster: N server-node processes (this CLI's `server` command), the server
 * manager in this process, and the gateway. Children are stopped when the cluster stops, and
 * never outlive this process: each runs with `--lifeline` and its stdin a pipe held open here,
 * which the kernel closes when this process dies (even by SIGKILL), and the child then exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TableSpec } from '../shared/table.ts';
import { buildApp } from './gateway/app.ts';
import type { NewJob } from './gateway/jobs.ts';
import type { Membership } from './gateway/nodes.ts';
import { JobDriver } from './jobs/driver.ts';
import { type LogregJobOptions, prepareLogregJob } from './jobs/logreg.ts';
import { prepareTextnnJob } from './jobs/textnn.ts';
import { type ManagerEvent, ServerManager } from './manager.ts';
import type { JobConfig } from './scheduler/types.ts';
import { tcpDialer } from './transports/tcp.ts';

const BIN = fileURLToPath(new URL('../bin/tabshard.mjs', import.meta.url));

export interface NodeChild {
  id: string;
  child: ChildProcess;
  addresses: Record<string, string>;
}

/**
 * Spawns `tabshard server --lifeline` and resolves once it printed where it listens. Its stdin is
 * the lifeline: a pipe nothing is written to, open as long as this process lives. Node flags for
 * the child (e.g. `--cpu-prof` to profile a node) come from TABSHARD_NODE_FLAGS, space-separated.
 */
export function spawnNode(id: string, extraArgs: string[] = [], adminToken = ''): Promise<NodeChild> {
  const flags = process.env.TABSHARD_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...flags, BIN, 'server', '--lifeline', '--id', id, ...extraArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TABSHARD_ADMIN_TOKEN: adminToken },
  });
  child.stdin!.on('error', () => {}); // EPIPE once the child has gone: nothing was to be written
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    child.once('exit', (code) => reject(new Error(`server ${id} exited with ${code} before listening`)));
    lines.on('line', (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === 'listening') resolve({ id, child, addresses: ev.addresses });
      } catch {
        // not a JSON event line
      }
    });
  });
}

/** Sends SIGTERM and resolves when the child has exited. */
function stopChild(n: NodeChild): Promise<void> {
  return new Promise((resolve) => {
    if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve();
    n.child.once('exit', () => resolve());
    n.child.kill('SIGTERM');
  });
}

export interface EmbeddedCluster {
  manager: ServerManager;
  nodes: NodeChild[];
  gateway: string;
  /** Token the nodes require for RING, TABLE and FENCE, and the gateway's admin API (generated per start). */
  adminToken: string;
  jobs: JobDriver[];
  stop(): Promise<void>;
}

/** A job to run: its app, its data (prepared, or read from the cache) and its scheduler settings. */
export interface JobRequest {
  /** 'logreg' (default) or 'textnn'. */
  app?: 'logreg' | 'textnn';
  data: Omit<LogregJobOptions, 'job'>;
  config?: Partial<Omit<JobConfig, 'job' | 'shards'>>;
}

export async function startEmbeddedCluster(
  opts: {
    nodes?: number;
    tables?: TableSpec[];
    port?: number;
    benchRaw?: boolean;
    jobs?: JobRequest[];
    /** The admin token (default: a fresh random one per start). */
    adminToken?: string;
    /** Called for every job started, at start-up and later through `POST /api/jobs`. */
    onjob?: (job: JobDriver) => void;
    /** The server manager's events (a node suspected, back, declared dead). */
    onevent?: (e: ManagerEvent) => void;
    /** Replicas per key range (default 1 with two or more nodes). */
    replicas?: number;
  } = {},
): Promise<EmbeddedCluster> {
  const nodes: NodeChild[] = [];
  const stopChildren = () => {
    for (const n of nodes) n.child.kill('SIGTERM');
  };
  try {
    const adminToken = opts.adminToken || randomUUID();
    for (let i = 1; i <= (opts.nodes ?? 3); i++)
      nodes.push(await spawnNode(`n${i}`, opts.benchRaw ? ['--bench-raw'] : [], adminToken));
    const manager = new ServerManager(
      tcpDialer(),
      nodes.map((n) => ({ id: n.id, addresses: n.addresses, control: n.addresses.tcp })),
      { adminToken, replicas: opts.replicas, onevent: opts.onevent },
    );
    await manager.start();
    for (const t of opts.tables ?? []) await manager.defineTable(t);
    const jobs: JobDriver[] = [];
    const addJob = async (j: JobRequest): Promise<JobDriver> => {
      const data = { ...j.data, job: jobs.length + 1 };
      const app = j.app === 'textnn' ? await prepareTextnnJob(data) : await prepareLogregJob(data);
      const driver = new JobDriver(app, manager, j.config);
      await driver.start();
      jobs.push(driver);
      opts.onjob?.(driver);
      return driver;
    };
    for (const j of opts.jobs ?? []) await addJob(j);
    // A job started from the admin API takes the first job's data and lease settings as defaults.
    const template = opts.jobs?.[0];
    let creating: Promise<unknown> = Promise.resolve();
    const createJob = (req: NewJob): Promise<JobDriver> => {
      const next = creating.then(() =>
        addJob({
          app: req.app ?? template?.app,
          data: { ...template?.data, ...(req.shards === undefined ? {} : { shards: req.shards }) },
          config: {
            ...template?.config,
            name: req.name ?? `spam-${req.app ?? template?.app ?? 'logreg'}-${jobs.length + 1}`,
            ...(req.iterations === undefined ? {} : { iterations: req.iterations }),
            ...(req.tau === undefined ? {} : { tau: req.tau }),
          },
        }),
      );
      creating = next.catch(() => {}); // one job is prepared at a time: job ids stay in order
      return next;
    };
    const app = buildApp({
      cluster: () => manager.info,
      stats: () => manager.stats(),
      nodes: () => manager.nodeStates(),
      membership: { join: (e) => manager.join(e), drain: (id) => manager.drain(id) },
      dialer: tcpDialer(),
      assets: {},
      jobs: () => jobs,
      createJob,
      adminToken,
    });
    const gateway = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
    return {
      manager,
      nodes,
      gateway,
      adminToken,
      jobs,
      async stop() {
        for (const j of jobs) j.scheduler.stop();
        manager.close();
        await app.close();
        await Promise.all(nodes.map(stopChild));
      },
    };
  } catch (err) {
    stopChildren();
    throw err;
  }
}
