/**
 * bench/kv: one server process and one worker process on 127.0.0.1, one request in flight, the
 * server summing pushes into its store; in the same run, the same bytes over the floor: a plain
 * socket (TCP, or a WebRTC data channel for `webrtc`) to a process that only counts bytes and
 * answers (bare-server.ts), no framing of ours.
 * One JSON line per (transport, workload, op) on stdout: PS and floor medians, their ratio, and
 * the share of the PS run's wall time that the server and the worker spent collecting garbage.
 *
 * With `--replicas 0,1,2` each workload also runs with k replicas per range: k + 1 server
 * processes, every bench table mastered whole by the first (a ring whose small-table bound holds
 * them), which forwards each push's rows down its chain before it acknowledges (chain
 * replication, docs/architecture.md §6). Lines then carry `replicas`.
 *
 * Capabilities (PROTOCOL.md §6.2): the `-caps` variant of each workload runs against servers
 * that enforce them (an admin token, the capability key installed by the manager); the worker
 * presents one task capability per connection before the timed loop and pushes under its stamp
 * (dense tables: a range grant; sparse-1M: a key set of its keys). It runs in the default run,
 * with `--caps`, or when `--workloads` names a `-caps` variant.
 *
 *   npm run bench:kv [-- --quick] [-- --transports tcp,webrtc] [-- --replicas 0,1] [-- --workloads dense-4MB] [-- --caps]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CapabilitySigner } from '../../server/auth/capability.ts';
import { spawnNode } from '../../server/cluster.ts';
import { ServerManager } from '../../server/manager.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import { Ring } from '../../shared/ring.ts';
import { BENCH_TABLES, capsGrants, workloads } from './workloads.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    transports: { type: 'string', default: 'tcp,webrtc' },
    workloads: { type: 'string', default: '' },
    replicas: { type: 'string', default: '0' },
    caps: { type: 'boolean', default: false },
  },
});
const named = values.workloads!.split(',').filter(Boolean);
/** Plain runs unless only `-caps` variants are named; capabilities in the default run, with --caps, or when named. */
const phases = [
  ...(named.length === 0 || named.some((x) => !x.endsWith('-caps')) ? [false] : []),
  ...(named.length === 0 || values.caps || named.some((x) => x.endsWith('-caps')) ? [true] : []),
];
const replicaCounts = values.replicas!.split(',').map(Number);
if (replicaCounts.some((k) => !Number.isInteger(k) || k < 0 || k > 4)) {
  console.error('bench:kv: --replicas takes integers in [0, 4], comma-separated');
  process.exit(2);
}

/** Starts the floor's server process and resolves with it and its TCP and WebRTC addresses. */
async function startBare(): Promise<{ child: ChildProcess; tcp: string; webrtc: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./bare-server.ts', import.meta.url))],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  for await (const line of createInterface({ input: child.stdout! })) {
    const ev = JSON.parse(line);
    if (ev.event === 'listening') return { child, tcp: ev.tcp, webrtc: ev.webrtc };
  }
  throw new Error('bare server exited before listening');
}

for (const transport of values.transports!.split(','))
  for (const k of replicaCounts)
    for (const caps of phases) {
      // With capabilities: nodes with an admin token, the signer's public key installed with the ring.
      const adminToken = caps ? `bench-${process.pid}` : '';
      const signer = caps ? CapabilitySigner.generate() : null;
      const servers = [];
      for (let i = 1; i <= k + 1; i++)
        servers.push(
          await spawnNode(
            `s${i}`,
            ['--no-webrtc'].filter(() => transport !== 'webrtc'),
            adminToken,
          ),
        );
      const server = servers[0];
      const bare = await startBare();
      const manager = new ServerManager(
        tcpDialer(),
        servers.map((s) => ({ id: s.id, addresses: s.addresses, control: s.addresses.tcp })),
        // One master for every bench table (the small-table rule), so k only adds its chain.
        { replicas: k, smallTableValues: 1 << 26, adminToken, capabilityKey: signer?.publicKey() },
      );
      try {
        await manager.start();
        for (const t of BENCH_TABLES) await manager.defineTable(t);
        // The sparse workload's keys as key set 1 of its table, which its grant names.
        if (caps)
          for (const w of workloads())
            if (w.keys instanceof Float64Array)
              await manager.defineKeySet(0, BENCH_TABLES.find((t) => t.name === w.name)!.id, 1, w.keys);
        const cap = signer?.sign({
          kind: 'task',
          job: 0,
          worker: 1,
          task: 1,
          attempt: 0,
          tables: capsGrants(1),
          exp: Date.now() + 86_400_000,
        });
        const master =
          manager.info.ring.nodes.length === 1
            ? server
            : servers.find(
                (x) => x.id === new Ring(manager.info.ring.nodes, manager.info.ring).owner(BENCH_TABLES[0], 0),
              )!;
        const worker = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            fileURLToPath(new URL('./worker.ts', import.meta.url)),
            JSON.stringify({
              transport,
              seed: master.addresses.tcp,
              // The floor runs on the transport measured: a plain data channel for webrtc.
              bare: transport === 'webrtc' ? bare.webrtc : bare.tcp,
              quick: values.quick,
              workloads: values.workloads,
              // The caps variant: the capability to present, and the layout (a ring query needs one).
              ...(cap ? { cap, cluster: manager.info } : {}),
            }),
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        for await (const line of createInterface({ input: worker.stdout! }))
          console.log(replicaCounts.length > 1 || k > 0 ? JSON.stringify({ ...JSON.parse(line), replicas: k }) : line);
        const code = await new Promise<number | null>((resolve) =>
          worker.exitCode !== null ? resolve(worker.exitCode) : worker.once('exit', resolve),
        );
        if (code !== 0) throw new Error(`bench worker (${transport}) exited with ${code}`);
      } finally {
        manager.close();
        for (const x of servers) x.child.kill('SIGTERM');
        bare.child.kill('SIGTERM');
      }
    }
