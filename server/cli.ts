/**
 * The `tabshard` command line.
 *   tabshard start  [--nodes 3] [--replicas 1] [--port 8080] [--json]   embedded cluster: server nodes, manager, gateway
 *     --replicas K: replicas per key range (chain replication; default 1, 0 with --nodes 1)
 *     [--job-name NAME] [--shards S] [--iterations I] [--tau T|inf] [--lease-ms MS] [--heartbeat-ms MS] [--no-job]
 *     [--app NAME] [--model K=V,…] [--data spam|ctr] [--examples N] [--eager] [--staleness-lr]   eager SSP (servers publish fresh values as the slowest clock advances);
 *                                  staleness-aware learning rate (pushes scaled by 1 / (1 + staleness))
 *     [--host 127.0.0.1] [--public-url URL]   where the gateway listens (0.0.0.0: every interface), and the URL
 *                   printed for people to open (a reverse proxy's, another interface's)
 *     [--tls-cert FILE --tls-key FILE]   the gateway over TLS (PEM): pages and API on https, relays and sessions on wss
 *     [--ice-servers stun:h:p,turn:h:p] [--turn-secret S] [--turn-ttl 3600]   ICE servers for the tabs and the
 *                   nodes; TURN credentials are derived from S (or TABSHARD_TURN_SECRET), coturn's use-auth-secret,
 *                   and live --turn-ttl seconds (server/auth/turn.ts)
 *     [--backups]   backup tasks: a task running past 2× the median task time is leased again to an idle
 *                   worker, and the first TASK_DONE counts (docs/architecture.md §8)
 *     [--push-values f32|f16|q8] [--pull-values f32|f16] [--compress]   less traffic: pushes as halves or int8
 *                   with error feedback, pull replies as halves, values deflated where it pays (PROTOCOL.md §3.4)
 *     the admin token is TABSHARD_ADMIN_TOKEN when set, else a fresh random one (printed)
 *     --json prints one line {"event":"ready","gateway","nodes":[{id,pid,addresses}],"adminToken","jobs","dataDir"} instead of the banner
 *     [--data-dir tabshard-data] [--fresh] [--checkpoint-every 1] [--checkpoint-ms 10000]   jobs, checkpoints and the
 *     scheduler's state are kept in the data directory; an unfinished job there resumes from its last checkpoint
 *     (taken every N iterations under BSP/τ, every MS under ASP), and the gateway listens on the last run's port
 *     unless --port is given. --fresh forgets what the directory holds.
 *     [--allowed-origin URL]... [--trust-proxy]   other page origins whose WebSockets are accepted; client
 *     addresses from X-Forwarded-For (behind a reverse proxy) for the gateway's per-address limits
 *   tabshard server [--id n1] [--host h] [--advertise HOST] [--port p] [--no-webrtc] [--lifeline] [--join URL]
 *                   [--ice-servers URLS]   one server node; --advertise: the host others are told to dial (with
 *                   --host 0.0.0.0, this host's address on the cluster's network); TURN secret from TABSHARD_TURN_SECRET
 *     --lifeline: exit (status 0) when stdin ends or closes, once the listeners are closed or after 1 s
 *     if closing hangs. The embedded cluster spawns its nodes so, holding their stdin pipes
 *     open; the kernel closes them when that process dies, even by SIGKILL, so no node outlives it.
 *     Without it a server ignores its stdin.
 *     --join URL: once listening, join the running cluster whose gateway is at URL (POST URL/api/nodes
 *     with its id and addresses and TABSHARD_ADMIN_TOKEN, which must be the cluster's admin token:
 *     the node requires it too); prints {"event":"joined","node","ring"} once the node masters its
 *     share and keeps serving, or one line `tabshard: could not join URL: <reason>` and exits 1.
 *     --host must then be an address the cluster's manager can reach.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { parseAggregateFlag } from '../shared/aggregate.ts';
import { parseTraffic, type TrafficOptions } from '../shared/protocol/values.ts';
import { DEFAULT_TURN_TTL_S, IceConfig, parseIceUrls } from './auth/turn.ts';
import type { JobRequest } from './cluster.ts';
import type { JobDriver } from './jobs/driver.ts';
import type { ManagerEvent } from './manager.ts';
import type { RunningNode } from './node/process.ts';

// What each command needs is loaded by that command: a server node never loads the applications,
// the gateway or tfjs, and a mistake on the command line is told before any of it loads.
type Apps = typeof import('../apps/jobs.ts');

/** How long a `--lifeline` server may take to close its listeners once its parent is gone. */
const LIFELINE_FORCE_MS = 1000;

/** `--tls-cert FILE --tls-key FILE` (both or neither) as PEM contents; a mistake is one line. */
function readTls(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new Error('--tls-cert and --tls-key go together');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  const out = { cert: read('--tls-cert', cert), key: read('--tls-key', key) };
  try {
    createSecureContext(out);
  } catch (err) {
    throw new Error(`--tls-cert/--tls-key: not a PEM certificate and its key (${(err as Error).message})`);
  }
  return out;
}

/** `--model k=v,k=v`: an application's model settings (numbers), e.g. `topics=20,alpha=0.1`. */
function parseModelFlag(s: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of s.split(',')) {
    const m = /^([A-Za-z][A-Za-z0-9_]{0,31})=(.+)$/.exec(part.trim());
    const n = m ? Number(m[2]) : Number.NaN;
    if (!m || !Number.isFinite(n))
      throw new Error(`--model must be name=number pairs joined by commas, not ${JSON.stringify(s)}`);
    out[m[1]] = n;
  }
  return out;
}

/** The demo job's request from the command line's flags. */
function jobRequest(v: Record<string, string | string[] | boolean | undefined>, apps: Apps): JobRequest {
  const { DEFAULT_APP, jobApp, jobAppNames } = apps;
  const num = (k: string) => (typeof v[k] === 'string' ? Number(v[k]) : undefined);
  const tau = v.tau === 'inf' || v.tau === 'asp' ? null : num('tau');
  if (v.app !== undefined && !jobAppNames().includes(v.app as string))
    throw new Error(`--app must be one of ${jobAppNames().join(', ')}`);
  const data = {
    shards: num('shards'),
    ...(v.data === undefined ? {} : { data: v.data as string }),
    ...(v.examples === undefined ? {} : { examples: num('examples') }),
    ...(typeof v.model === 'string' ? { model: parseModelFlag(v.model) } : {}),
  };
  const app = typeof v.app === 'string' ? v.app : DEFAULT_APP;
  try {
    jobApp(app).check(data);
  } catch (err) {
    throw new Error(`--app ${app}: ${(err as Error).message}`);
  }
  return {
    app: v.app as string | undefined,
    data,
    config: {
      name: typeof v['job-name'] === 'string' ? v['job-name'] : undefined,
      iterations: num('iterations'),
      tau,
      leaseMs: num('lease-ms'),
      heartbeatMs: num('heartbeat-ms'),
      eager: v.eager === true,
      stalenessLr: v['staleness-lr'] === true,
      backups: v.backups === true,
      ...(typeof v.aggregate === 'string' ? { aggregate: parseAggregateFlag(v.aggregate) } : {}),
      ...trafficFlags(v),
    },
  };
}

/** `--push-values`, `--pull-values`, `--compress`, `--push-threshold T`, `--push-threshold-rms F`: the job's traffic options. */
function trafficFlags(v: Record<string, unknown>): { traffic?: TrafficOptions } {
  const push = v['push-values'];
  const pull = v['pull-values'];
  if (push !== undefined && push !== 'f32' && push !== 'f16' && push !== 'q8')
    throw new Error('--push-values must be f32, f16 or q8');
  if (pull !== undefined && pull !== 'f32' && pull !== 'f16') throw new Error('--pull-values must be f32 or f16');
  const number = (flag: string): number | undefined => {
    const t = v[flag];
    if (t === undefined) return undefined;
    const x = Number(t);
    if (!(typeof t === 'string' && t.trim() !== '' && Number.isFinite(x) && x >= 0))
      throw new Error(`--${flag} must be a number ≥ 0`);
    return x;
  };
  const threshold = number('push-threshold');
  const thresholdRms = number('push-threshold-rms');
  const traffic = parseTraffic(
    { push, pullHalf: pull === 'f16', compress: v.compress === true, threshold, thresholdRms },
    (why) => new Error(why),
  );
  return traffic ? { traffic } : {};
}

/** One line of the banner per server-manager event. */
function describeEvent(e: ManagerEvent): string {
  switch (e.type) {
    case 'node-dead':
      return `  node ${e.node} is dead (${e.reason}); ring v${e.ring} installed in ${e.ms} ms`;
    case 'node-joined':
    case 'node-drained':
      return `  node ${e.node} ${e.type === 'node-joined' ? 'joined' : 'drained'}: ring v${e.ring} in ${e.ms} ms (copies ${e.copyMs} ms, moving keys held ${e.frozenMs} ms)`;
    case 'node-suspect':
      return `  node ${e.node} has not answered for ${e.silentMs} ms`;
    case 'node-up':
      return `  node ${e.node} answers again`;
  }
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      id: { type: 'string', default: 'n1' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      nodes: { type: 'string', default: '3' },
      replicas: { type: 'string' },
      'no-webrtc': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-job': { type: 'boolean', default: false },
      shards: { type: 'string' },
      iterations: { type: 'string' },
      tau: { type: 'string' },
      'lease-ms': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'job-name': { type: 'string' },
      model: { type: 'string' },
      app: { type: 'string' },
      data: { type: 'string' },
      examples: { type: 'string' },
      eager: { type: 'boolean', default: false },
      'staleness-lr': { type: 'boolean', default: false },
      backups: { type: 'boolean', default: false },
      aggregate: { type: 'string' },
      'push-values': { type: 'string' },
      'push-threshold': { type: 'string' },
      'push-threshold-rms': { type: 'string' },
      'pull-values': { type: 'string' },
      compress: { type: 'boolean', default: false },
      lifeline: { type: 'boolean', default: false },
      join: { type: 'string' },
      'data-dir': { type: 'string', default: 'tabshard-data' },
      fresh: { type: 'boolean', default: false },
      'checkpoint-every': { type: 'string', default: '1' },
      'checkpoint-ms': { type: 'string', default: '10000' },
      'allowed-origin': { type: 'string', multiple: true },
      'trust-proxy': { type: 'boolean', default: false },
      'ice-servers': { type: 'string' },
      'turn-secret': { type: 'string' },
      'turn-ttl': { type: 'string', default: String(DEFAULT_TURN_TTL_S) },
      'public-url': { type: 'string' },
      'tls-cert': { type: 'string' },
      advertise: { type: 'string' },
      'tls-key': { type: 'string' },
    },
  });
  // ICE servers (STUN, and TURN with credentials derived from the TURN server's secret): checked
  // before anything starts, so a mistake is one line.
  const turnSecret = values['turn-secret'] || process.env.TABSHARD_TURN_SECRET || undefined;
  const iceUrls = values['ice-servers'] === undefined ? [] : parseIceUrls(values['ice-servers'], turnSecret);
  const turnTtl = Number(values['turn-ttl']);
  if (!Number.isInteger(turnTtl) || turnTtl < 60 || turnTtl > 7 * 86_400)
    throw new Error(`--turn-ttl must be an integer number of seconds in [60, 604800], got ${values['turn-ttl']}`);
  const tls = readTls(values['tls-cert'], values['tls-key']);
  const publicUrl = values['public-url'];
  if (publicUrl !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(publicUrl))
    throw new Error(`--public-url must be http(s)://host[:port], got ${publicUrl}`);
  if (cmd === 'server') {
    let running: RunningNode | null = null;
    let stopping = false;
    /** Closes the listeners and exits 0; with `forceAfterMs`, exits then even if closing hangs. */
    const stop = (forceAfterMs?: number) => {
      if (stopping) return;
      stopping = true;
      if (forceAfterMs !== undefined) setTimeout(() => process.exit(0), forceAfterMs);
      if (!running) process.exit(0);
      void running.close().then(() => process.exit(0));
    };
    if (values.lifeline) {
      // Watched from the start: a parent that dies while the node starts up ends it too.
      const lost = () => stop(LIFELINE_FORCE_MS);
      process.stdin.on('end', lost);
      process.stdin.on('close', lost);
      process.stdin.on('error', lost);
      process.stdin.resume(); // what the parent writes is ignored; only the end counts
      // The parent's end of the stdout pipe goes with it: writing there must not crash the exit.
      process.stdout.on('error', () => {});
    }
    const join = values.join;
    if (values.advertise !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(values.advertise))
      throw new Error(`--advertise must be a host name or IPv4 address, got ${values.advertise}`);
    const token = process.env.TABSHARD_ADMIN_TOKEN || undefined;
    /** One line, no stack (the stack too with TABSHARD_DEBUG=1), and exit 1. */
    const cannotJoin = (err: unknown): never => {
      if (process.env.TABSHARD_DEBUG) console.error(err);
      console.error(`tabshard: could not join ${join}: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    };
    const { joinCluster, joinUrl } = await import('./node/join.ts');
    if (join !== undefined) {
      // Mistakes the gateway would refuse anyway are reported before the node starts.
      try {
        joinUrl(join);
        if (!token) throw new Error('TABSHARD_ADMIN_TOKEN is not set (the join needs the cluster admin token)');
      } catch (err) {
        cannotJoin(err);
      }
    }
    const { startNode } = await import('./node/process.ts');
    running = await startNode({
      id: values.id!,
      host: values.host,
      port: Number(values.port),
      webrtc: !values['no-webrtc'],
      adminToken: token,
      ice: new IceConfig(iceUrls, turnSecret, turnTtl),
      advertise: values.advertise,
    });
    console.log(JSON.stringify({ event: 'listening', node: values.id, addresses: running.addresses }));
    process.on('SIGTERM', () => stop());
    process.on('SIGINT', () => stop());
    if (join !== undefined) {
      // The node serves while it joins: the manager dials it and copies its share to it.
      const joined = await joinCluster(join, { id: values.id!, addresses: running.addresses }, token).catch(cannotJoin);
      if (!stopping) console.log(JSON.stringify({ event: 'joined', node: joined.node, ring: joined.ring }));
    }
    return;
  }
  if (cmd === 'start') {
    const json = values.json;
    // Jobs started later through the admin API (POST /api/jobs) are reported the same way.
    const report = (j: JobDriver) => {
      if (json) {
        j.listen({
          metric: (m) => console.log(JSON.stringify({ event: 'metric', job: j.app.job, ...m })),
          log: (ev) => console.log(JSON.stringify({ event: 'scheduler', ...ev })),
          // After the last held-out evaluation (the scheduler's 'done' state comes before it).
          done: () => console.log(JSON.stringify({ event: 'done', job: j.app.job, reached: j.reached })),
        });
        return;
      }
      const s = j.status();
      console.log(
        `  job ${j.app.job}: ${s.name}, ${s.shards} shards x ${s.iterations} iterations, tau ${s.tau ?? 'inf'}, target accuracy ${j.app.target.accuracy}`,
      );
      j.listen({
        metric: (m) =>
          console.log(
            `  job ${j.app.job} iteration ${m.iteration}: held-out accuracy ${m.accuracy.toFixed(4)}, log-loss ${m.logLoss.toFixed(4)} (${(m.ms / 1000).toFixed(1)} s)`,
          ),
        done: () => console.log(`  job ${j.app.job} done: ${j.reached ? 'target reached' : 'target not reached'}`),
      });
    };
    let ready = false;
    const nodeCount = Number(values.nodes);
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 64)
      throw new Error(`--nodes must be an integer in [1, 64], got ${values.nodes}`);
    const replicas = values.replicas === undefined ? Math.min(1, nodeCount - 1) : Number(values.replicas);
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > Math.min(8, nodeCount - 1))
      throw new Error(
        `--replicas must be an integer in [0, ${Math.min(8, nodeCount - 1)}] (below --nodes), got ${values.replicas}`,
      );
    const every = Number(values['checkpoint-every']);
    const everyMs = Number(values['checkpoint-ms']);
    if (!Number.isInteger(every) || every < 1)
      throw new Error(`--checkpoint-every must be an integer >= 1, got ${values['checkpoint-every']}`);
    if (!Number.isInteger(everyMs) || everyMs < 100)
      throw new Error(`--checkpoint-ms must be an integer >= 100, got ${values['checkpoint-ms']}`);
    const dataDir = resolve(values['data-dir']);
    const job = values['no-job'] ? null : jobRequest(values, await import('../apps/jobs.ts'));
    const [{ startEmbeddedCluster }, { DEMO_TABLES }] = await Promise.all([
      import('./cluster.ts'),
      import('./demo-tables.ts'),
    ]);
    const c = await startEmbeddedCluster({
      nodes: nodeCount,
      replicas,
      dataDir,
      fresh: values.fresh,
      checkpoint: { everyIterations: every, everyMs },
      onsay: (line) => console.log(json ? JSON.stringify({ event: 'data', message: line }) : `  ${line}`),
      port: Number(values.port),
      tables: DEMO_TABLES,
      jobs: job ? [job] : [],
      adminToken: process.env.TABSHARD_ADMIN_TOKEN || undefined,
      allowedOrigins: values['allowed-origin'],
      trustProxy: values['trust-proxy'],
      host: values.host,
      tls,
      ice: { urls: iceUrls, secret: turnSecret, ttlS: turnTtl },
      onjob: (j) => ready && report(j),
      onevent: (e) => console.log(json ? JSON.stringify({ event: 'cluster', ...e }) : describeEvent(e)),
    });
    ready = true;
    const stop = () => c.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // What people are told to open: the public URL when given (a proxy, another interface), else where it listens.
    const shown = publicUrl?.replace(/\/$/, '') ?? c.gateway;
    if (json) {
      const nodes = c.nodes.map((n) => ({ id: n.id, pid: n.child.pid, addresses: n.addresses }));
      const jobs = c.jobs.map((j) => ({
        job: j.app.job,
        version: j.app.version,
        url: `${shown}/?job=${j.app.job}`,
      }));
      console.log(
        JSON.stringify({
          event: 'ready',
          gateway: c.gateway,
          ...(publicUrl ? { publicUrl: shown } : {}),
          nodes,
          adminToken: c.adminToken,
          jobs,
          dataDir,
        }),
      );
      for (const j of c.jobs) report(j);
      return;
    }
    console.log(`tabshard: ${c.nodes.length} server nodes, ring v${c.manager.info.ring.version}`);
    for (const n of c.nodes)
      console.log(`  node ${n.id} (pid ${n.child.pid}): ${Object.values(n.addresses).join('  ')}`);
    console.log(`  tables: ${DEMO_TABLES.map((t) => t.name).join(', ')}`);
    console.log(`  data directory: ${dataDir}  (checkpoints and job state; --fresh starts over)`);
    console.log(`  gateway: ${shown}  (try ${shown}/api/jobs)`);
    console.log(`  admin console: ${shown}/admin  (admin token: ${c.adminToken})`);
    console.log(`  metrics: ${shown}/metrics  OpenAPI: ${shown}/api/openapi.json`);
    for (const j of c.jobs) report(j);
    if (c.jobs.length) console.log(`  open ${shown}/ in browser tabs to train (or: tabshard worker --url ${shown})`);
    console.log('Ctrl-C stops the cluster.');
    return;
  }
  console.error(
    'usage: tabshard start [--nodes N] [--replicas K] [--port P] [--data-dir DIR] [--fresh] [--checkpoint-every N] [--checkpoint-ms MS] [--allowed-origin URL]... [--trust-proxy] [--json] [--no-job] [--shards S] [--iterations I] [--tau T|inf] [--job-name NAME] [--lease-ms MS] [--heartbeat-ms MS] [--app NAME] [--model K=V,…] [--data spam|ctr] [--examples N] [--eager] [--staleness-lr] [--backups] [--aggregate RULE] [--push-values f32|f16|q8] [--pull-values f32|f16] [--compress] [--push-threshold T] [--push-threshold-rms F] [--host H] [--public-url URL] [--tls-cert FILE --tls-key FILE] [--ice-servers URLS] [--turn-secret S] [--turn-ttl SECONDS] | tabshard worker --url URL [--slowdown F] [--stall MS:EVERY] [--relay-only] | tabshard server [--id ID] [--host H] [--advertise HOST] [--port P] [--no-webrtc] [--lifeline] [--join URL] [--ice-servers URLS]\n' +
      '  server --lifeline: exit when stdin ends or closes (the embedded cluster holds it open; it closes when that process dies)\n' +
      '  server --join URL: once listening, join the cluster whose gateway is at URL (TABSHARD_ADMIN_TOKEN: its admin token)',
  );
  process.exit(2);
}

main().catch((err) => {
  // One clear line for a mistake on the command line (or anything else); the stack with TABSHARD_DEBUG=1.
  console.error(process.env.TABSHARD_DEBUG ? err : `tabshard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
