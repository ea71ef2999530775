/**
 * Running `bin/tabshard.mjs` as a user would, for the command-line tests: each call is its own
 * process; calls made together run at once (a refused command line starts nothing, so they do
 * not contend for anything but the CPU).
 */
import { execFile } from 'node:child_process';
import { ROOT } from './harness.ts';

export interface CliRun {
  /** Exit status (null if killed by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tabshard ARGS…` from the repository root; resolves whatever the exit status. */
export function runCli(args: string[], timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/tabshard.mjs', ...args],
      { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
