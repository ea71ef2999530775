/**
 * Test support (imported by *.test.ts only, server/ and e2e/ alike): a real coturn TURN server (Debian's `coturn`,
 * installed by .ci/run) on 127.0.0.1 at a free port, with `use-auth-secret` (time-limited
 * credentials, server/auth/turn.ts) and loopback peers allowed, started for one test file and
 * stopped by it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

export const TURNSERVER = '/usr/bin/turnserver';

/** A UDP port free right now on 127.0.0.1 (coturn listens on UDP and TCP at it). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections at 127.0.0.1:`port`; rejects after `ms`. */
async function listening(port: number, ms: number, exited: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (exited()) throw new Error('turnserver exited before it listened');
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`turnserver not listening on ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts coturn with `secret`; `url` is its `turn:` URL. Call `stop` (also on failure). */
export async function startCoturn(secret: string) {
  if (!existsSync(TURNSERVER)) throw new Error(`${TURNSERVER} is missing: apt-get install -y coturn`);
  const port = await freePort();
  const child: ChildProcess = spawn(
    TURNSERVER,
    [
      '-n', // no configuration file
      '--listening-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--relay-ip=127.0.0.1',
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      '--realm=tabshard',
      '--allow-loopback-peers',
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      '--no-multicast-peers',
      '--fingerprint',
      '--log-file=stdout',
      '--simple-log',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log: string[] = [];
  child.stdout?.on('data', (b: Buffer) => log.push(b.toString()));
  child.stderr?.on('data', (b: Buffer) => log.push(b.toString()));
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };
  try {
    await listening(port, 10_000, () => exited);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${log.join('')}`);
  }
  return { url: `turn:127.0.0.1:${port}`, port, log, stop };
}
