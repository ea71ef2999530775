/**
 * A task's reads for the task loop (client/runner.ts): each table's values pulled from the
 * servers, or under eager SSP (docs/architecture.md §5) read from a subscription the servers publish to
 * as the slowest clock advances. A subscribed shard whose values are at clock ≥ iteration − τ is
 * read without a round trip; one whose subscription lags waits for the publication (at most
 * `eagerWaitMs`, then pulls); a shard seen the first time is pulled, then subscribed. The
 * subscriptions are kept per table and shard, the least recently used closed beyond a limit.
 */
import type { Subscription } from './subscription.ts';
import type { Keys, KvTable } from './worker.ts';

/** What a read needs of the task's lease. */
export interface ReadLease {
  iteration: number;
  tau?: number | null;
  eager?: boolean;
}

/** One table's values for a task; `clock` is the read values' own clock when known (eager reads). */
export interface ReadResult {
  values: Float32Array;
  clock?: number;
}

/** How a read talks to the servers (the loop wraps KvTable's calls to count each task's frames). */
export interface ReadIo {
  /** Resolves with the values of a pull (Worker.wait of KvTable.pull). */
  pull(table: KvTable, keys: Keys): Promise<Float32Array>;
  /** KvTable.subscribe. */
  subscribe(table: KvTable, keys: Keys): Subscription;
}

export interface ReadsOptions {
  /** How long a read waits for a lagging subscription before it pulls (default 2000 ms). */
  eagerWaitMs?: number;
  /** Subscriptions kept (per table and shard; the least recently used closes; default 8). */
  maxSubscriptions?: number;
}

/** The reads of one worker's task loop, with its eager SSP subscriptions. */
export class TaskReads {
  /** Eager SSP subscriptions by `${table}#${shard}`, least recently used first. */
  private readonly subs = new Map<string, Subscription>();

  constructor(private readonly opts: ReadsOptions = {}) {}

  /**
   * `table`'s values of `keys` for a task of `shard`: pulled, or under eager SSP read from the
   * subscription (a copy: publications overwrite the subscription's array). A plain pull is sent
   * before this returns (synchronously), so it follows every request sent before it on each
   * connection.
   */
  async read(lease: ReadLease, shard: number, table: KvTable, keys: Keys, io: ReadIo): Promise<ReadResult> {
    if (!lease.eager) return { values: await io.pull(table, keys) };
    const key = `${table.spec.name}#${shard}`;
    const sub = this.subs.get(key);
    if (sub) {
      this.subs.delete(key);
      this.subs.set(key, sub); // most recently used
      const min = lease.tau === null || lease.tau === undefined ? 0 : Math.max(0, lease.iteration - lease.tau);
      const hit = sub.values(min) ?? (await within(sub.ready(min), this.opts.eagerWaitMs ?? 2000));
      if (hit) return { values: hit.slice(), clock: sub.clock };
    }
    const values = await io.pull(table, keys);
    if (!sub) {
      this.subs.set(key, io.subscribe(table, keys));
      while (this.subs.size > (this.opts.maxSubscriptions ?? 8)) {
        const [oldest, s] = this.subs.entries().next().value as [string, Subscription];
        s.close();
        this.subs.delete(oldest);
      }
    }
    return { values };
  }

  /** Closes every subscription (the loop calls it when it ends). */
  close(): void {
    for (const s of this.subs.values()) s.close();
    this.subs.clear();
  }
}

/** `p`'s value, or null when it rejects or takes longer than `ms` (the timer is cleared either way). */
function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  return Promise.race([p.catch(() => null), late]).finally(() => clearTimeout(timer));
}
