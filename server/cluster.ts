/**
 * The embedded cluster: N server-node processes (this CLI's `server` command), the server
 * manager in this process, and the gateway. Children are stopped when the cluster stops, and
 * never outlive this process: each runs with `--lifeline` and its stdin a pipe held open here,
 * which the kernel closes when this process dies (even by SIGKILL), and the child then exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_APP, type JobDataOptions, jobApp } from '../apps/jobs.ts';
import type { TableSpec } from '../shared/table.ts';
import { CapabilitySigner } from './auth/capability.ts';
import { ReceiptKey } from './auth/receipt.ts';
import { IceConfig } from './auth/turn.ts';
import { DEFAULT_CACHE_DIR } from './data/data-cache.ts';
import { Checkpoints } from './durable/checkpoints.ts';
import type { CheckpointPolicy } from './durable/job-checkpointer.ts';
import { DurableStore } from './durable/store.ts';
import { buildApp } from './gateway/app.ts';
import type { NewJob } from './gateway/jobs.ts';
import { type DriverConfig, type DriverDurability, JobDriver } from './jobs/driver.ts';
import { type ManagerEvent, ServerManager } from './manager.ts';
import { tcpDialer } from './transports/tcp.ts';

const BIN = fileURLToPath(new URL('../bin/tabshard.mjs', import.meta.url));

export interface NodeChild {
  id: string;
  child: ChildProcess;
  addresses: Record<string, string>;
}

/** What runs one server node by default: this CLI's `server` command. */
export const SERVER_COMMAND = [BIN, 'server'];

/**
 * Spawns `tabshard server --lifeline` (or `command`, which takes the same flags and prints the
 * same `listening` line) and resolves once it printed where it listens. Its stdin is the lifeline:
 * a pipe nothing is written to, open as long as this process lives. Node flags for the child (e.g.
 * `--cpu-prof` to profile a node) come from TABSHARD_NODE_FLAGS, space-separated.
 */
export function spawnNode(
  id: string,
  extraArgs: string[] = [],
  adminToken = '',
  turnSecret = '',
  command = SERVER_COMMAND,
): Promise<NodeChild> {
  const flags = process.env.TABSHARD_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...flags, ...command, '--lifeline', '--id', id, ...extraArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TABSHARD_ADMIN_TOKEN: adminToken, TABSHARD_TURN_SECRET: turnSecret },
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
  /** A registered application (apps/jobs.ts; default logreg). */
  app?: string;
  data: Omit<JobDataOptions, 'job'>;
  config?: DriverConfig;
}

export async function startEmbeddedCluster(
  opts: {
    nodes?: number;
    tables?: TableSpec[];
    port?: number;
    /**
     * What runs each server node, after the Node executable (default SERVER_COMMAND): a program's
     * own node entry that takes `server`'s `--lifeline --id ID [--ice-servers URLS]` and prints
     * its `listening` line (bench/browser/echo-node.ts). Not offered by the CLI.
     */
    nodeCommand?: string[];
    jobs?: JobRequest[];
    /** The admin token (default: a fresh random one per start). */
    adminToken?: string;
    /** Called for every job started, at start-up and later through `POST /api/jobs`. */
    onjob?: (job: JobDriver) => void;
    /** The server manager's events (a node suspected, back, declared dead). */
    onevent?: (e: ManagerEvent) => void;
    /** Replicas per key range (default 1 with two or more nodes). */
    replicas?: number;
    /**
     * Keep jobs, checkpoints and the scheduler's state here (docs/architecture.md §6); an
     * unfinished job found there resumes from its last usable checkpoint instead of `jobs`.
     */
    dataDir?: string;
    /** With `dataDir`: forget what it holds and start over. */
    fresh?: boolean;
    checkpoint?: CheckpointPolicy;
    /** Lines about the data directory (resuming, a checkpoint skipped, starting over). */
    onsay?: (line: string) => void;
    /** Page origins besides the gateway's own whose WebSockets are accepted (buildApp). */
    allowedOrigins?: string[];
    /** Take client addresses from X-Forwarded-For (behind a reverse proxy), for the per-address limits. */
    trustProxy?: boolean;
    /** Where the gateway listens (default 127.0.0.1; 0.0.0.0 for every interface). */
    host?: string;
    /** The gateway's TLS certificate and key (PEM): pages and API over https, relays and sessions over wss. */
    tls?: { cert: Buffer; key: Buffer };
    /** ICE servers for the tabs and the nodes: STUN/TURN URLs, and the TURN server's shared secret (server/auth/turn.ts). */
    ice?: { urls: string[]; secret?: string; ttlS?: number };
  } = {},
): Promise<EmbeddedCluster> {
  const nodes: NodeChild[] = [];
  let store: DurableStore | null = null;
  const stopChildren = () => {
    for (const n of nodes) n.child.kill('SIGTERM');
    store?.close();
  };
  const say = opts.onsay ?? (() => {});
  try {
    if (opts.dataDir) {
      store = DurableStore.open(opts.dataDir);
      const stored = store.jobs();
      const finished = stored.length > 0 && stored.every((j) => j.state !== 'running');
      if (finished) say(`every job in ${opts.dataDir} had finished or been stopped: starting over`);
      if (opts.fresh || finished) {
        // The port and the ring version stay: tabs of the last run follow the new cluster.
        store.clearJobs();
        await rm(join(opts.dataDir, 'jobs'), { recursive: true, force: true });
      }
    }
    const adminToken = opts.adminToken || randomUUID();
    const nodeArgs = opts.ice?.urls.length ? ['--ice-servers', opts.ice.urls.join(',')] : [];
    // Signs every lease's capability; the nodes get its public key with each ring (PROTOCOL.md §6.2).
    const signer = CapabilitySigner.generate();
    const receipts = new ReceiptKey(adminToken);
    // The nodes start at once (each spends most of a second loading its code); one that fails
    // fails the start, and the others are stopped with it.
    const started = await Promise.allSettled(
      Array.from({ length: opts.nodes ?? 3 }, (_, i) =>
        spawnNode(`n${i + 1}`, nodeArgs, adminToken, opts.ice?.secret, opts.nodeCommand),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const manager = new ServerManager(
      tcpDialer(),
      nodes.map((n) => ({ id: n.id, addresses: n.addresses, control: n.addresses.tcp })),
      {
        adminToken,
        capabilityKey: signer.publicKey(),
        replicas: opts.replicas,
        onevent: opts.onevent,
        firstRingVersion: store ? store.ringVersion + 1 : 1,
        onring: store ? (v) => (store!.ringVersion = v) : undefined,
      },
    );
    await manager.start();
    const checkpoints = store && opts.dataDir ? new Checkpoints(opts.dataDir, store, manager, say) : null;
    for (const t of opts.tables ?? []) await manager.defineTable(t);
    const jobs: JobDriver[] = [];
    let lastJob = Math.max(0, ...(store?.jobs().map((j) => j.job) ?? []));
    /** Starts job `id` (a new one by default); with `resume`, from that checkpoint. */
    const addJob = async (j: JobRequest, id = lastJob + 1, resume?: DriverDurability['resume']): Promise<JobDriver> => {
      lastJob = Math.max(lastJob, id);
      const data = { ...j.data, job: id };
      const app = await jobApp(j.app ?? DEFAULT_APP).prepare(data);
      const durable =
        store && checkpoints
          ? { store, checkpoints, policy: opts.checkpoint ?? {}, resume: resume ?? undefined }
          : null;
      const driver = new JobDriver(app, manager, j.config, durable, signer, receipts);
      if (store && !resume) store.saveJob({ job: id, name: driver.status().name, request: j, state: 'running' });
      await driver.start();
      jobs.push(driver);
      opts.onjob?.(driver);
      return driver;
    };
    const unfinished = store?.jobs().filter((j) => j.state === 'running') ?? [];
    for (const sj of unfinished) {
      const resume = await checkpoints!.latestUsable(sj.job);
      say(
        resume
          ? `job ${sj.job} resumes from checkpoint ${resume.checkpoint.seq} (iteration ${resume.checkpoint.iteration}) in ${opts.dataDir}`
          : `job ${sj.job} has no usable checkpoint in ${opts.dataDir}: it starts over`,
      );
      await addJob(sj.request as JobRequest, sj.job, resume ?? undefined);
    }
    if (unfinished.length === 0) for (const j of opts.jobs ?? []) await addJob(j);
    // A job started from the admin API takes the first job's data and lease settings as defaults.
    const template = opts.jobs?.[0];
    let creating: Promise<unknown> = Promise.resolve();
    const createJob = (req: NewJob): Promise<JobDriver> => {
      const app = req.app ?? template?.app;
      // Model settings belong to one application: the first job's apply only to the same one.
      const { model: templateModel, ...templateData } = template?.data ?? {};
      const model = req.model ?? ((app ?? DEFAULT_APP) === (template?.app ?? DEFAULT_APP) ? templateModel : undefined);
      const next = creating.then(() =>
        addJob({
          app,
          data: {
            ...templateData,
            ...(req.shards === undefined ? {} : { shards: req.shards }),
            ...(model === undefined ? {} : { model }),
          },
          config: {
            ...template?.config,
            name: req.name ?? `spam-${app ?? DEFAULT_APP}-${lastJob + 1}`,
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
      // Built bundles are kept beside the prepared data, so the next start serves them at once.
      assets: { cacheDir: join(DEFAULT_CACHE_DIR, 'bundles') },
      jobs: () => jobs,
      createJob,
      adminToken,
      allowedOrigins: opts.allowedOrigins,
      trustProxy: opts.trustProxy,
      ice: new IceConfig(opts.ice?.urls ?? [], opts.ice?.secret, opts.ice?.ttlS),
      tls: opts.tls,
    });
    // A restart on the same data directory listens where the last run did, so open tabs reconnect.
    const lastPort = Number(store?.meta('port') ?? 0);
    const port = opts.port || lastPort;
    let gateway: string;
    try {
      gateway = await app.listen({ host: opts.host ?? '127.0.0.1', port });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      throw new Error(
        opts.port
          ? `port ${port} is in use`
          : `port ${port} (where the last run on ${opts.dataDir} listened) is in use; pass --port`,
      );
    }
    store?.setMeta('port', new URL(gateway).port);
    return {
      manager,
      nodes,
      gateway,
      adminToken,
      jobs,
      async stop() {
        for (const j of jobs) j.stop();
        manager.close();
        await app.close();
        await Promise.all(nodes.map(stopChild));
        store?.close();
      },
    };
  } catch (err) {
    stopChildren();
    throw err;
  }
}
