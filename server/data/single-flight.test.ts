/**
 * singleFlight (single-flight.ts) with real processes and files: while one process computes an
 * entry the other waits and reads it (one computation in all); a lock left by a dead process is
 * taken over; a failed computation leaves no lock behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { singleFlight } from './single-flight.ts';

const MODULE = fileURLToPath(new URL('./single-flight.ts', import.meta.url));

/**
 * A process that asks for the entry `file`; when it computes, it appends its pid to `log`, says
 * `computing` and writes the entry only once told `go` on stdin. It prints the value it got.
 */
function contender(file: string, log: string) {
  const script = `
    import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
    import { createInterface } from 'node:readline';
    import { singleFlight } from ${JSON.stringify(MODULE)};
    const file = ${JSON.stringify(file)};
    const lines = createInterface({ input: process.stdin });
    const v = await singleFlight(file + '.lock', () => (existsSync(file) ? readFileSync(file, 'utf8') : null), async () => {
      appendFileSync(${JSON.stringify(log)}, process.pid + '\\n');
      console.log('computing');
      await new Promise((r) => lines.once('line', r));
      writeFileSync(file, 'by ' + process.pid);
      return readFileSync(file, 'utf8');
    }, () => console.log('waiting'));
    console.log('got ' + v);
    process.exit(0);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const out: string[] = [];
  const waiting: Array<[string, () => void]> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    out.push(l);
    for (const [prefix, r] of waiting.splice(0)) if (l.startsWith(prefix)) r();
  });
  const said = (prefix: string) =>
    out.some((l) => l.startsWith(prefix)) ? Promise.resolve() : new Promise<void>((r) => waiting.push([prefix, r]));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  return { child, out, said, exited };
}

describe('single flight', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabshard-flight-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('one process computes while another waits for its entry', async () => {
    const file = join(dir, 'entry');
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const a = contender(file, log);
    let b: ReturnType<typeof contender> | null = null;
    try {
      await a.said('computing'); // a holds the lock
      b = contender(file, log);
      const bDone = b.exited;
      await b.said('waiting'); // b found the lock held
      a.child.stdin!.write('go\n');
      assert.deepEqual([await a.exited, await bDone], [0, 0]);
      const by = `by ${a.child.pid}`;
      assert.deepEqual([a.out.at(-1), b.out.at(-1)], [`got ${by}`, `got ${by}`]);
      assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [String(a.child.pid)], 'computed once');
      assert.equal(existsSync(`${file}.lock`), false);
    } finally {
      a.child.kill('SIGKILL');
      b?.child.kill('SIGKILL');
    }
  });

  it("takes over a dead process's lock, and a failed computation leaves no lock", async () => {
    const file = join(dir, 'stale');
    const lock = `${file}.lock`;
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(lock, String(gone.pid)); // as a killed owner leaves it
    const read = () => (existsSync(file) ? readFileSync(file, 'utf8') : null);
    await assert.rejects(
      singleFlight(lock, read, async () => {
        throw new Error('no disk');
      }),
      /no disk/,
    );
    assert.equal(existsSync(lock), false);
    const v = await singleFlight(lock, read, async () => {
      writeFileSync(file, 'made');
      return 'made';
    });
    assert.equal(v, 'made');
    assert.equal(await singleFlight(lock, read, async () => 'again'), 'made', 'read, not computed');
  });
});
