/**
 * Eager SSP on the worker (docs/architecture.md §5, PROTOCOL.md §5.1): a subscription to keys of a table.
 * Its keys are sliced by the ring like a pull's, the slices owned by one node are merged into one
 * SUBSCRIBE to that node, and every PUBLISH a node sends is copied into the subscription's one
 * value array, in place. A read then waits only until every node has published a clock at least
 * as high as the one it needs — usually not at all.
 *
 * When the ring changes (a failover), a live subscription is subscribed again as a whole under
 * the new ring (`reslice`): the simplest correct thing, a SUBSCRIBE per owner node, as at first.
 */
import { TabshardError } from '../shared/errors.ts';
import type { Frame } from '../shared/protocol/frame.ts';
import type { KvKeys } from '../shared/protocol/kv.ts';
import { asPublish, encodeSubscribe, encodeUnsubscribe } from '../shared/protocol/subscribe.ts';
import type { Ring } from '../shared/ring.ts';
import type { ReplyFn } from '../shared/rpc.ts';
import { type Keys, sliceByNode } from '../shared/slicing.ts';
import type { TableSpec } from '../shared/table.ts';

export type { Keys };

export interface Subscription {
  readonly keys: Keys;
  /** Lowest clock published for every slice so far (−1 before every slice has one; Infinity without keys). */
  readonly clock: number;
  /**
   * The values (d per key, keys order) once every slice has a publication with clock ≥ minClock,
   * else null. The array is the subscription's own, overwritten in place by later publications
   * (each slice with values at least as fresh): copy it to keep a snapshot across an await.
   */
  values(minClock: number): Float32Array | null;
  /** Resolves with the values (the same array as `values`) once every slice has a publication with clock ≥ minClock. */
  ready(minClock: number): Promise<Float32Array>;
  /** Drops the subscription on every node; pending and later `ready` calls reject (TS_ERR_TRANSPORT_CLOSED). */
  close(): void;
}

/** The part of a subscription one node serves. */
export interface SubSlice {
  readonly node: string;
  /** Subscription id on the wire: unique among the worker's live slices. */
  readonly id: number;
  readonly sub: KvSubscription;
  readonly keys: KvKeys;
  /** Where the node's values go: runs of (offset in keys, key count), in the node's order. */
  readonly runs: ReadonlyArray<{ at: number; n: number }>;
  /** Floats a publication carries (keys × d). */
  readonly floats: number;
  clock: number;
  /** A full publication arrived (one of only what changed applies on top of the values in hand). */
  full: boolean;
  /** The ring version the slice was cut under. */
  readonly version: number;
}

/** What a subscription needs of its worker (client/worker.ts implements it). */
export interface SubscriptionHost {
  readonly job: number;
  /** The ring requests are sliced by. */
  readonly currentRing: Ring;
  /**
   * Sends one request to `node`, dialling (and resending after a lost connection) as needed.
   * With `moved`, a request whose keys may now belong to other nodes (refused with
   * TS_ERR_NOT_OWNER, or lost with a node that left the ring sliced under `version`) goes to
   * `moved` instead of `done`, to be re-sliced (Worker.sendSlice).
   */
  sendSlice(
    node: string,
    build: (id: number) => Uint8Array[],
    done: ReplyFn,
    version?: number,
    moved?: (err: TabshardError) => void,
  ): void;
  /** Sends one request to `node` only over a connection already open (no dial); the reply is ignored. */
  sendIfConnected(node: string, build: (id: number) => Uint8Array[]): void;
  /** Registers a slice under a fresh id (`make(id)`), or forgets one. */
  addSlice(make: (id: number) => SubSlice): SubSlice;
  dropSlice(slice: SubSlice): void;
  /** Counts bytes of a request sent (SUBSCRIBE/UNSUBSCRIBE) into the worker's `bytes.requested`. */
  countRequest(parts: Uint8Array[]): Uint8Array[];
}

interface Waiter {
  minClock: number;
  resolve: (v: Float32Array) => void;
  reject: (e: TabshardError) => void;
}

export class KvSubscription implements Subscription {
  private readonly buf: Float32Array;
  private slices: SubSlice[] = [];
  private lowest: number;
  private waiters: Waiter[] = [];
  private failure: TabshardError | null = null;

  /** `parts`: the request's slices grouped by owner (see KvTable.subscribe). */
  constructor(
    private readonly host: SubscriptionHost,
    private readonly spec: TableSpec,
    readonly keys: Keys,
    n: number,
    parts: ReadonlyArray<{ node: string; keys: KvKeys; runs: ReadonlyArray<{ at: number; n: number }> }>,
    /** How publications are to travel (SUBSCRIBE flags HALF, COMPRESS). */
    private readonly asks: { half?: boolean; compress?: boolean } = {},
  ) {
    this.buf = new Float32Array(n * spec.valueLength);
    this.lowest = parts.length === 0 ? Number.POSITIVE_INFINITY : -1;
    this.slices = this.addSlices(parts, -1);
    for (const s of this.slices) this.subscribe(s);
  }

  private addSlices(
    parts: ReadonlyArray<{ node: string; keys: KvKeys; runs: ReadonlyArray<{ at: number; n: number }> }>,
    clock: number,
  ): SubSlice[] {
    const version = this.host.currentRing.version;
    return parts.map((p) => {
      const floats = p.runs.reduce((a, r) => a + r.n, 0) * this.spec.valueLength;
      return this.host.addSlice((id) => ({
        node: p.node,
        id,
        sub: this,
        keys: p.keys,
        runs: p.runs,
        floats,
        clock,
        full: false,
        version,
      }));
    });
  }

  /**
   * @internal The ring changed: every slice is dropped (UNSUBSCRIBE where the node is still in
   * the ring and connected) and the keys are subscribed again as the current ring slices them,
   * under new ids. The values in hand stay, and so does the clock: each key's values are at least
   * as fresh as it (they came from publications of that clock or later); the new owners publish
   * at once after their ACK if the job has had a clock (PROTOCOL.md §5.1).
   */
  reslice(): void {
    if (this.failure || this.slices.length === 0) return;
    const ring = this.host.currentRing;
    const { job } = this.host;
    const table = this.spec.id;
    for (const s of this.slices) {
      this.host.dropSlice(s);
      if (ring.nodes.includes(s.node))
        this.host.sendIfConnected(s.node, (requestId) =>
          this.host.countRequest(encodeUnsubscribe({ requestId, job, table, subscription: s.id })),
        );
    }
    const shape = { id: table, keySpace: this.spec.keySpace, valueLength: this.spec.valueLength };
    const parts = sliceByNode(ring, shape, this.keys).map((p) => ({ node: p.owner, keys: p.keys, runs: p.runs }));
    this.slices = this.addSlices(parts, this.lowest);
    for (const s of this.slices) this.subscribe(s);
  }

  get clock(): number {
    return this.lowest;
  }

  values(minClock: number): Float32Array | null {
    return this.failure === null && this.lowest >= minClock ? this.buf : null;
  }

  ready(minClock: number): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.lowest >= minClock) return Promise.resolve(this.buf);
    return new Promise((resolve, reject) => this.waiters.push({ minClock, resolve, reject }));
  }

  close(): void {
    this.end(new TabshardError('TS_ERR_TRANSPORT_CLOSED', 'subscription closed'));
  }

  /**
   * @internal (Re)sends the SUBSCRIBE of one slice: at first, and over a new connection after a
   * lost one. A slice replaced meanwhile (`reslice`) no longer matters: its failure is ignored.
   */
  subscribe(s: SubSlice): void {
    const { job } = this.host;
    const table = this.spec.id;
    this.host.sendSlice(
      s.node,
      (requestId) =>
        this.host.countRequest(
          encodeSubscribe({ requestId, job, table, subscription: s.id, keys: s.keys, ...this.asks, changed: true }),
        ),
      (err) => {
        if (err && this.slices.includes(s)) this.end(err);
      },
      s.version,
      // Its keys moved: the worker re-slices every subscription when its ring changes, so only a
      // slice that is somehow still current needs it here.
      () => {
        if (this.slices.includes(s)) this.reslice();
      },
    );
  }

  /** @internal A PUBLISH frame for slice `s`; false when it does not fit the slice (ignored). */
  deliver(s: SubSlice, f: Frame): boolean {
    if (this.failure) return false;
    let m: ReturnType<typeof asPublish>;
    try {
      m = asPublish(f);
    } catch {
      return false;
    }
    if (m.job !== this.host.job || m.table !== this.spec.id) return false;
    const d = this.spec.valueLength;
    const v = m.values;
    if (m.positions) {
      if (!this.applyChanges(s, m.positions, v)) return false;
    } else if (v.length !== s.floats) return false;
    else if (s.runs.length === 1) this.buf.set(v, s.runs[0].at * d);
    else
      for (let i = 0, off = 0; i < s.runs.length; i++) {
        const r = s.runs[i];
        this.buf.set(v.subarray(off, off + r.n * d), r.at * d);
        off += r.n * d;
      }
    if (!m.positions) s.full = true;
    if (m.clock > s.clock) {
      s.clock = m.clock;
      let low = Number.POSITIVE_INFINITY;
      for (const x of this.slices) if (x.clock < low) low = x.clock;
      this.lowest = low;
      if (this.waiters.length > 0) this.wake();
    }
    return true;
  }

  /**
   * A publication of what changed for slice `s` (PROTOCOL.md §5.1, CHANGED): the values of
   * `positions` (the slice's key order) onto those in hand. False, nothing written, when it does
   * not fit: no full publication yet, positions past the slice's keys, or values of another length.
   */
  private applyChanges(s: SubSlice, positions: Float64Array, v: Float32Array): boolean {
    const d = this.spec.valueLength;
    const n = s.floats / d;
    if (!s.full || v.length !== positions.length * d) return false;
    if (positions.length > 0 && positions[positions.length - 1] >= n) return false;
    // Positions are ascending (a key list): walk the slice's runs along with them.
    let r = 0;
    let start = 0;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i];
      while (p >= start + s.runs[r].n) start += s.runs[r++].n;
      const at = (s.runs[r].at + p - start) * d;
      for (let j = 0; j < d; j++) this.buf[at + j] = v[i * d + j];
    }
    return true;
  }

  /**
   * Ends the subscription (closed, or a SUBSCRIBE failed: e.g. TS_ERR_SUBSCRIPTION_LIMIT, node
   * gone): drops it on every node still connected, and rejects waiting and later reads with `err`.
   */
  private end(err: TabshardError): void {
    if (this.failure) return;
    const { job } = this.host;
    const table = this.spec.id;
    for (const s of this.slices) {
      this.host.dropSlice(s);
      this.host.sendIfConnected(s.node, (requestId) =>
        this.host.countRequest(encodeUnsubscribe({ requestId, job, table, subscription: s.id })),
      );
    }
    this.failure = err;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(err);
  }

  private wake(): void {
    const keep: Waiter[] = [];
    for (const x of this.waiters) {
      if (x.minClock <= this.lowest) x.resolve(this.buf);
      else keep.push(x);
    }
    this.waiters = keep;
  }
}
