/**
 * bench/kv: one server process and one worker process on 127.0.0.1, one request in flight, the
 * server summing pushes into its store; in the same run, the same bytes over the floor: a plain
 * socket (TCP, or a WebRTC data channel for `webrtc`) to a process that only counts bytes and
 * answers (bare-server.ts), no framing of ours.
 * One JSON line per (transport, workload, op) on stdout: PS and floor medians, their ratio, and
 * the share of the PS run's wall time that the server and the worker spent collecting garbage.
 *
 *   npm run bench:kv [-- --quick] [-- --transports tcp,webrtc]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnNode } from '../../server/cluster.ts';
import { ServerManager } from '../../server/manager.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import { BENCH_TABLES } from './workloads.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    transports: { type: 'string', default: 'tcp,webrtc' },
    workloads: { type: 'string', default: '' },
  },
});

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

for (const transport of values.transports!.split(',')) {
  const server = await spawnNode('s1');
  const bare = await startBare();
  const manager = new ServerManager(tcpDialer(), [
    { id: 's1', addresses: server.addresses, control: server.addresses.tcp },
  ]);
  try {
    await manager.start();
    for (const t of BENCH_TABLES) await manager.defineTable(t);
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./worker.ts', import.meta.url)),
        JSON.stringify({
          transport,
          seed: server.addresses.tcp,
          // The floor runs on the transport measured: a plain data channel for webrtc.
          bare: transport === 'webrtc' ? bare.webrtc : bare.tcp,
          quick: values.quick,
          workloads: values.workloads,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    for await (const line of createInterface({ input: worker.stdout! })) console.log(line);
    const code = await new Promise<number | null>((resolve) =>
      worker.exitCode !== null ? resolve(worker.exitCode) : worker.once('exit', resolve),
    );
    if (code !== 0) throw new Error(`bench worker (${transport}) exited with ${code}`);
  } finally {
    manager.close();
    server.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
}
