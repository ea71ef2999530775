/**
 * The oracle process (e2e/oracle.ts) as the e2e tests drive it: started against a gateway, its
 * JSON lines awaited like the harness's cluster events, stopped (it then reads every key back)
 * or killed by PID; and the `/metrics` readings the membership tests check (node up, masters).
 * Shared by failover.test.ts and membership.test.ts.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type Harness, ROOT } from './harness.ts';

export type OracleLine = Record<string, unknown> & { event: string };

/** What the oracle prints when it stops (e2e/oracle.ts). */
export interface OracleFinal {
  acked: number;
  pushes: number;
  min: number | null;
  max: number | null;
  lostKeys: number;
  doubledKeys: number;
  errors: string[];
  errorCount: number;
  ring: number;
  owners: Record<string, number>;
  maxAckMs: number;
}

/** The oracle child process: its JSON lines, awaited like the harness's cluster events. */
export class Oracle {
  readonly lines: OracleLine[] = [];
  private readonly waiters = new Set<{ pred: (l: OracleLine) => boolean; resolve: (l: OracleLine) => void }>();
  private readonly exited: Promise<{ code: number | null; signal: string | null }>;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let l: OracleLine;
      try {
        l = JSON.parse(line);
      } catch {
        return; // not a JSON line
      }
      this.lines.push(l);
      for (const w of [...this.waiters])
        if (w.pred(l)) {
          this.waiters.delete(w);
          w.resolve(l);
        }
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts the oracle against `gateway`; its stdin is a pipe held open until `stop()`. */
  static start(gateway: string, config: Record<string, unknown> = {}): Oracle {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'e2e/oracle.ts', JSON.stringify({ gateway, ...config })],
      {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    return new Oracle(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The latest acknowledged count the oracle printed (0 before its first progress line). */
  get acked(): number {
    for (let i = this.lines.length - 1; i >= 0; i--)
      if (this.lines[i].event === 'oracle') return this.lines[i].acked as number;
    return 0;
  }

  /** The first line (past or future) `pred` accepts; rejects after `timeoutMs` or when the oracle exits. */
  waitFor(pred: (l: OracleLine) => boolean, timeoutMs: number, what: string): Promise<OracleLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        this.waiters.delete(w);
        reject(new Error(`oracle: ${what}: ${why}; last lines: ${this.lines.slice(-3).map((l) => JSON.stringify(l))}`));
      };
      const timer = setTimeout(() => fail(`not within ${timeoutMs} ms`), timeoutMs);
      const w = {
        pred,
        resolve: (l: OracleLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.waiters.add(w);
      void this.exited.then(({ code, signal }) => {
        if (!this.waiters.has(w)) return;
        clearTimeout(timer);
        fail(`exited (${code ?? signal})`);
      });
    });
  }

  /** SIGTERM: the oracle finishes its push, reads every key back and exits; resolves with its final line. */
  async stop(timeoutMs = 20_000): Promise<OracleFinal> {
    const final = this.waitFor((l) => l.event === 'oracle-final', timeoutMs, 'final line');
    this.child.kill('SIGTERM');
    const line = (await final) as unknown as OracleFinal;
    assert.deepEqual(await this.exited, { code: 0, signal: null }, 'the oracle exits 0');
    return line;
  }

  /** SIGKILL by PID if it still runs (cleanup in `finally`). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** `tabshard_node_up` by node, from `/metrics`. */
export async function nodeUp(h: Harness): Promise<Record<string, number>> {
  const res = await fetch(`${h.gateway}/metrics`, { headers: { authorization: `Bearer ${h.cluster.adminToken}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  return Object.fromEntries(
    [...text.matchAll(/^tabshard_node_up\{node="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])]),
  );
}

/** Key ranges each node masters (summed over tables), from `/metrics`. */
export async function masters(h: Harness): Promise<Record<string, number>> {
  const res = await fetch(`${h.gateway}/metrics`, { headers: { authorization: `Bearer ${h.cluster.adminToken}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  return Object.fromEntries(
    [...text.matchAll(/^tabshard_node_ranges\{node="([^"]+)",role="master"\} (\S+)$/gm)].map((m) => [
      m[1],
      Number(m[2]),
    ]),
  );
}
