/**
 * Eager SSP on a server node (docs/architecture.md §5, PROTOCOL.md §5.1): the subscriptions of every
 * connection, and their publication when a job's slowest clock advances.
 *
 * Back-pressure: a subscription has at most one publication in the transport at a time. A clock
 * that arrives while one is still queued is remembered (the highest one), and sent, with the
 * values read then, once the transport reports the earlier one sent (onSent) — so a slow
 * subscriber costs one publication per subscription, not one per clock, and is never skipped.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { BufferPool } from '../../shared/pool.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import { encodePublish } from '../../shared/protocol/subscribe.ts';
import { concatFloats, packValues } from '../../shared/protocol/values.ts';
import { type Conn, partsLength } from '../../shared/transport/types.ts';
import { CHANGES_BUDGET_FLOATS, changedPositions, valuesAt } from './publish-changes.ts';
import type { Table } from './table.ts';

/** Live subscriptions per connection. */
export const MAX_SUBSCRIPTIONS = 64;
/** Subscribed keys per connection, summed over its subscriptions (32 MiB of stored key lists). */
export const MAX_SUBSCRIBED_KEYS = 1 << 22;
/** Subscribed floats (keys × d) per connection: one publication round is at most 256 MiB. */
export const MAX_SUBSCRIBED_FLOATS = 1 << 26;

interface Sub {
  readonly conn: Conn;
  readonly id: number;
  readonly job: number;
  readonly table: Table;
  /** Owned copy (decoded key lists alias the node's scratch). */
  readonly keys: KvKeys;
  readonly n: number;
  /** How the SUBSCRIBE asked its publications to travel (flags HALF, COMPRESS, CHANGED). */
  readonly asks: PublishAsks;
  /**
   * With CHANGED and room in the node's budget: the values of the previous publication as the
   * subscriber decoded them (null before the first), so the next sends only what changed.
   */
  last: Float32Array | null;
  readonly tracked: boolean;
  /** A publication is in the transport (not yet onSent). */
  busy: boolean;
  /** The clock to publish once the one in the transport is sent; -1 for none. */
  pending: number;
  dropped: boolean;
}

export type PublishAsks = { half?: boolean; compress?: boolean; changed?: boolean };

export interface PublishStats {
  subscriptions: number;
  /** PUBLISH frames handed to transports, and their bytes (header included). */
  publishedFrames: number;
  publishedBytes: number;
  /** Of those, publications of only what changed (flag CHANGED). */
  changedFrames: number;
}

export class Subscriptions {
  private readonly byConn = new Map<Conn, Map<number, Sub>>();
  private readonly byJob = new Map<number, Set<Sub>>();
  /** The last clock published per job, sent at once to a later subscriber. */
  private readonly clocks = new Map<number, number>();
  private frames = 0;
  private bytes = 0;
  private live = 0;
  /** Floats the tracked subscriptions keep (CHANGES_BUDGET_FLOATS at most). */
  private trackedFloats = 0;
  /** Publications sent as changes only. */
  private changedFrames = 0;

  constructor(private readonly pool: BufferPool) {}

  /**
   * Adds (or replaces, for an id already live on `conn`) a subscription whose keys were checked
   * against the table. Refuses with TS_ERR_SUBSCRIPTION_LIMIT past the per-connection limits.
   */
  subscribe(conn: Conn, id: number, job: number, table: Table, keys: KvKeys, n: number, asks: PublishAsks = {}): void {
    let mine = this.byConn.get(conn);
    const old = mine?.get(id);
    let count = 0;
    let keyTotal = n;
    let floatTotal = n * table.spec.valueLength;
    for (const s of mine?.values() ?? [])
      if (s !== old) {
        count++;
        keyTotal += s.n;
        floatTotal += s.n * s.table.spec.valueLength;
      }
    if (count >= MAX_SUBSCRIPTIONS)
      throw new TabshardError('TS_ERR_SUBSCRIPTION_LIMIT', `${MAX_SUBSCRIPTIONS} subscriptions per connection`);
    if (keyTotal > MAX_SUBSCRIBED_KEYS || floatTotal > MAX_SUBSCRIBED_FLOATS)
      throw new TabshardError(
        'TS_ERR_SUBSCRIPTION_LIMIT',
        `at most ${MAX_SUBSCRIBED_KEYS} keys and ${MAX_SUBSCRIBED_FLOATS} values per connection`,
      );
    if (old) this.unsubscribe(conn, id);
    if (!mine) {
      mine = new Map();
      this.byConn.set(conn, mine);
    }
    const own: KvKeys = keys.kind === 'list' ? { kind: 'list', keys: keys.keys.slice() } : { ...keys };
    const floats = n * table.spec.valueLength;
    const tracked = asks.changed === true && this.trackedFloats + floats <= CHANGES_BUDGET_FLOATS;
    if (tracked) this.trackedFloats += floats;
    const sub: Sub = {
      conn,
      id,
      job,
      table,
      keys: own,
      n,
      asks,
      busy: false,
      pending: -1,
      dropped: false,
      last: null,
      tracked,
    };
    mine.set(id, sub);
    let forJob = this.byJob.get(job);
    if (!forJob) {
      forJob = new Set();
      this.byJob.set(job, forJob);
    }
    forJob.add(sub);
    this.live++;
  }

  /** Publishes subscription `id` of `conn` at once when its job has published a clock before. */
  catchUp(conn: Conn, id: number): void {
    const sub = this.byConn.get(conn)?.get(id);
    const clock = sub && this.clocks.get(sub.job);
    if (sub && clock !== undefined) this.send(sub, clock);
  }

  /** Drops subscription `id` of `conn`; unknown ids are ignored. */
  unsubscribe(conn: Conn, id: number): void {
    const mine = this.byConn.get(conn);
    const sub = mine?.get(id);
    if (!mine || !sub) return;
    mine.delete(id);
    if (mine.size === 0) this.byConn.delete(conn);
    this.forget(sub);
  }

  /** Drops every subscription of a closed connection. */
  dropConn(conn: Conn): void {
    const mine = this.byConn.get(conn);
    if (!mine) return;
    this.byConn.delete(conn);
    for (const sub of mine.values()) this.forget(sub);
  }

  /** Publishes the current values of every subscription of `job`, tagged with `clock`. */
  publish(job: number, clock: number): void {
    this.clocks.set(job, clock);
    const subs = this.byJob.get(job);
    if (subs) for (const sub of subs) this.send(sub, clock);
  }

  stats(): PublishStats {
    return {
      subscriptions: this.live,
      publishedFrames: this.frames,
      publishedBytes: this.bytes,
      changedFrames: this.changedFrames,
    };
  }

  private forget(sub: Sub): void {
    sub.dropped = true;
    if (sub.tracked) this.trackedFloats -= sub.n * sub.table.spec.valueLength;
    sub.last = null;
    this.live--;
    const forJob = this.byJob.get(sub.job);
    forJob?.delete(sub);
    if (forJob?.size === 0) this.byJob.delete(sub.job);
  }

  /**
   * The publication of `sub` at `clock`: its values as they are now (parts lent by the store,
   * given back by `release` once sent), or for a tracked subscription a copy, sent as what changed
   * since the previous publication where that is smaller.
   */
  private encode(sub: Sub, clock: number): { msg: Uint8Array[]; release?: () => void } {
    const head = { job: sub.job, table: sub.table.spec.id, subscription: sub.id, clock };
    const { parts, release } = sub.table.read(sub.keys, this.pool);
    if (!sub.tracked) return { msg: encodePublish(head, parts, sub.asks), release };
    const d = sub.table.spec.valueLength;
    const now = concatFloats(parts); // a copy: the store's parts go back at once
    release?.();
    // What the subscriber will hold: F16 values as it decodes them.
    const seen = sub.asks.half ? new Float32Array(now.length) : now;
    if (sub.asks.half) packValues(now, 'f16', seen);
    const positions = sub.last && changedPositions(sub.last, seen, d, sub.asks.half ? 2 : 4);
    sub.last = seen;
    if (!positions) return { msg: encodePublish(head, [now], sub.asks) };
    this.changedFrames++;
    return { msg: encodePublish({ ...head, positions }, [valuesAt(now, positions, d)], sub.asks) };
  }

  private send(sub: Sub, clock: number): void {
    if (sub.busy) {
      sub.pending = Math.max(sub.pending, clock);
      return;
    }
    if (sub.dropped || sub.conn.closed) return;
    const { msg, release } = this.encode(sub, clock);
    sub.busy = true;
    const sent = (): void => {
      release?.();
      sub.busy = false;
      const next = sub.pending;
      sub.pending = -1;
      if (next >= 0) this.send(sub, next);
    };
    try {
      sub.conn.send(msg, sent);
    } catch {
      // Above this transport's message limit: the subscriber cannot be served; it keeps its clock
      // (and a tracked one publishes in full next time: it did not get these values).
      release?.();
      sub.busy = false;
      sub.last = null;
      return;
    }
    this.frames++;
    this.bytes += partsLength(msg);
  }
}
