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
 *   npm run bench:kv [-- --quick] [-- --transports tcp,webrtc] [-- --replicas 0,1] [-- --workloads dense-4MB]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnNode } from '../../server/cluster.ts';
import { ServerManager } from '../../server/manager.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import { Ring } from '../../shared/ring.ts';
import { BENCH_TABLES } from './workloads.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    transports: { type: 'string', default: 'tcp,webrtc' },
    workloads: { type: 'string', default: '' },
    replicas: { type: 'string', default: '0' },
  },
});
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
  for (const k of replicaCounts) {
    const servers = [];
    for (let i = 1; i <= k + 1; i++)
      servers.push(
        await spawnNode(
          `s${i}`,
          ['--no-webrtc'].filter(() => transport !== 'webrtc'),
        ),
      );
    const server = servers[0];
    const bare = await startBare();
    const manager = new ServerManager(
      tcpDialer(),
      servers.map((s) => ({ id: s.id, addresses: s.addresses, control: s.addresses.tcp })),
      // One master for every bench table (the small-table rule), so k only adds its chain.
      { replicas: k, smallTableValues: 1 << 26 },
    );
    try {
      await manager.start();
      for (const t of BENCH_TABLES) await manager.defineTable(t);
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
