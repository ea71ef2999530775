/**
 * One process computes a cache entry while the others wait for it: two gateways (or two test
 * files) preparing the same job at once on one cache folder would otherwise each spend the same
 * half-minute of CPU, and slow each other down while they do.
 *
 * The first to create `<file>.lock` (exclusive create, holding its process id) computes; the
 * others watch the folder until the lock is gone, then read the entry. A lock whose process has
 * died is removed by the next caller, so a killed process never blocks the folder; when the
 * owner's computation fails, a waiter finds no entry and computes it itself.
 */
import { closeSync, openSync, readFileSync, unlinkSync, watch, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** How often a waiter looks again when no change of the folder is reported. */
const RECHECK_MS = 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/** Takes the lock, or returns false when another live process holds it. */
function tryLock(lock: string): boolean {
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(lock, 'utf8'));
    } catch {
      continue; // removed meanwhile: try again
    }
    // A lock still being written reads empty: its owner is alive.
    if (!Number.isInteger(pid) || pid <= 0 || alive(pid)) return false;
    try {
      unlinkSync(lock); // its owner died
    } catch {
      // another waiter removed it first
    }
  }
}

/** Resolves once the folder of `lock` changes near it, or after RECHECK_MS. */
function changed(lock: string): Promise<void> {
  return new Promise((resolve) => {
    let w: ReturnType<typeof watch> | null = null;
    const done = () => {
      clearTimeout(timer);
      w?.close();
      resolve();
    };
    const timer = setTimeout(done, RECHECK_MS);
    try {
      w = watch(dirname(lock), (_ev, name) => {
        if (name === null || String(name).startsWith(basename(lock).replace(/\.lock$/, ''))) done();
      });
      w.on('error', done);
    } catch {
      // the folder cannot be watched: the timer rechecks
    }
  });
}

/**
 * `read()` when it finds the entry; otherwise computes it with `make()` (which writes it) under
 * `lock`, or waits while another process does and reads its result (`onwait` is called once when
 * it starts waiting).
 */
export async function singleFlight<T>(
  lock: string,
  read: () => T | null,
  make: () => Promise<T>,
  onwait?: () => void,
): Promise<T> {
  let told = false;
  for (;;) {
    const hit = read();
    if (hit !== null) return hit;
    if (tryLock(lock)) {
      try {
        return read() ?? (await make()); // written by a process that held the lock just before
      } finally {
        try {
          unlinkSync(lock);
        } catch {
          // already gone
        }
      }
    }
    if (!told) onwait?.();
    told = true;
    await changed(lock);
  }
}
