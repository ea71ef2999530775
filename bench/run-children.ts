/**
 * What the benchmarks that drive whole clusters share (bench:e2e, bench:attack): the demo job as
 * `npm start` runs it, child processes whose JSON lines are read as they come, and one rule for
 * ending them — every child and the embedded cluster's server nodes are killed on any exit path
 * of the benchmark process (normal exit, error, SIGINT, SIGTERM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { EmbeddedCluster, JobRequest } from '../server/cluster.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = fileURLToPath(new URL('../bin/tabshard.mjs', import.meta.url));

/** The job `npm start` runs with no flags (server/cli.ts `jobRequest` of no options): the spam data's defaults, BSP. */
export const DEMO_JOB: JobRequest = { data: {}, config: { eager: false, stalenessLr: false } };

/** Children alive now, and the cluster of the run in progress: stopped on any exit path. */
const live = new Set<ChildProcess>();
let current: EmbeddedCluster | null = null;

/** Names the cluster of the run in progress (null once it is stopped), so an exit kills its nodes too. */
export function runningCluster(c: EmbeddedCluster | null): void {
  current = c;
}

function killAll(signal: NodeJS.Signals): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  for (const n of current?.nodes ?? []) if (n.child.exitCode === null) n.child.kill(signal);
}
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killAll('SIGKILL');
    process.exit(130);
  });

/** Spawns node with `args`, JSON lines of its stdout to `online`; `exited` resolves when it exits 0. */
export function child(args: string[], online: (ev: Record<string, unknown>) => void) {
  const c = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  live.add(c);
  const exited = new Promise<void>((resolve, reject) => {
    createInterface({ input: c.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      try {
        online(JSON.parse(line));
      } catch {
        // not a JSON line
      }
    });
    c.once('error', reject);
    c.once('exit', (code, signal) => {
      live.delete(c);
      if (code === 0) resolve();
      else reject(new Error(`${args.slice(0, 3).join(' ')} exited with ${code ?? signal}`));
    });
  });
  exited.catch(() => {});
  return { child: c, exited };
}

/** Rejects after `ms` (the run is then stopped by its finally), unless `p` settles first. */
export async function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
