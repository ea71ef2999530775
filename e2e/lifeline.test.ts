/**
 * Server-node processes never outlive the process that started them: `tabshard start` spawns its
 * nodes as `tabshard server --lifeline` with their stdin a pipe it holds open, and a node exits
 * when that pipe closes — which the kernel does when `tabshard start` dies, even by SIGKILL. A
 * `tabshard server` started on its own (no --lifeline) ignores its stdin. Real processes only;
 * every process started here is killed by PID in `finally`, also when an assertion failed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { ROOT, startCluster } from './harness.ts';

/** The fields of /proc/<pid>/stat after the command name: [state, ppid, …]; null if gone. */
function stat(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The processes whose parent is `ppid` (read from /proc, not from what the parent says). */
function childrenOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && Number(stat(pid)?.[1]) === ppid) pids.push(pid);
  }
  return pids.sort((a, b) => a - b);
}

/** Whether `pid` runs `tabshard server` (and not, say, the esbuild service tsx may have started). */
function isServerNode(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('tabshard.mjs')) && argv.includes('server');
  } catch {
    return false;
  }
}

/**
 * Whether `pid` still runs: `kill(pid, 0)` succeeds, and it is not a zombie (an orphan that
 * exited is a zombie until its new parent reaps it, and signal 0 still reaches a zombie).
 */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = stat(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Polls every 50 ms, up to `ms`, until none of `pids` runs; resolves with those still running. */
async function exitedWithin(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = pids.filter(running);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process as found: its id and its start time (so a reused id is never killed by mistake). */
const found = (pid: number) => ({ pid, start: stat(pid)?.[19] });

/** SIGKILL to `p` if it is still the process that was found. */
function killFound(p: { pid: number; start: string | undefined }): void {
  if (p.start === undefined || stat(p.pid)?.[19] !== p.start) return;
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** `tabshard server` on its own, stdin a pipe this test holds; resolves once it listens. */
async function startServer(args: string[]): Promise<{ child: ChildProcess; tcp: string }> {
  const child = spawn(process.execPath, ['bin/tabshard.mjs', 'server', '--id', 'solo', '--no-webrtc', ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`tabshard server exited (${code ?? signal})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const ev = JSON.parse(line);
      if (ev.event === 'listening') resolve({ child, tcp: ev.addresses.tcp });
    });
  });
}

const exitOf = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

/** Opens a TCP connection to `tcp://host:port` and closes it (the node still accepts). */
function accepts(address: string): Promise<void> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

describe('server-node processes and their parent', { timeout: 60_000 }, () => {
  it('kill -9 of `tabshard start`: every server node it started exits within 5 s', async () => {
    const { child, ready } = await startCluster({ startArgs: ['--no-job'] });
    // Its children as the kernel sees them, killed in `finally` whatever the ready line said: the
    // server nodes, and the esbuild service when tsx had files to compile (it has a lifeline too).
    const pids = childrenOf(child.pid!);
    const cleanup = pids.map(found);
    try {
      const nodes = pids.filter(isServerNode);
      assert.equal(nodes.length, 3);
      assert.deepEqual(
        ready.nodes.map((n) => n.pid).sort((a, b) => a - b),
        nodes,
        'the ready line names the node processes',
      );
      for (const pid of pids) assert.ok(running(pid), `child ${pid} runs`);
      const killed = exitOf(child);
      process.kill(child.pid!, 'SIGKILL');
      assert.equal((await killed).signal, 'SIGKILL');
      const t0 = Date.now();
      const left = await exitedWithin(pids, 5000);
      assert.deepEqual(left, [], `children still running 5 s after their parent was killed: ${left.join(', ')}`);
      console.log(
        `lifeline: ${pids.length} children (${nodes.length} nodes) gone ${Date.now() - t0} ms after kill -9 of their parent`,
      );
    } finally {
      child.kill('SIGKILL');
      for (const p of cleanup) killFound(p);
    }
  });

  it('with --lifeline, a server exits with status 0 when its stdin closes', async () => {
    const { child } = await startServer(['--lifeline']);
    try {
      const exit = exitOf(child);
      child.stdin!.end();
      const left = await exitedWithin([child.pid!], 5000);
      assert.deepEqual(left, [], 'the server still runs 5 s after its stdin closed');
      assert.deepEqual(await exit, { code: 0, signal: null });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('without --lifeline, a server keeps running when its stdin closes', async () => {
    const { child, tcp } = await startServer([]);
    try {
      child.stdin!.end();
      // Longer than a lifeline server takes to exit (at most 1 s after its stdin closed).
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(running(child.pid!), 'the server exited after its stdin closed');
      assert.equal(child.exitCode, null);
      await accepts(tcp);
      const exit = exitOf(child);
      child.kill('SIGTERM');
      assert.deepEqual(await exit, { code: 0, signal: null });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
