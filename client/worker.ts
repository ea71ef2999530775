/**
 * The worker library (ARCHITECTURE §4, ps-lite's shape): `push` and `pull` return a timestamp
 * at once; `wait(ts)` resolves when that request is done (with the values, for a pull).
 * Requests are sliced by the ring, each slice sent to its owner, and replies reassembled.
 *
 * Every push is stamped (worker, task, attempt, seq), so a slice resent after a lost
 * connection is applied at most once by its server. Used by Node workers and browser tabs
 * alike: the transports are passed in as dialers.
 */
import { type ClusterInfo, parseClusterInfo } from '../shared/cluster.ts';
import { TabshardError, toTabshardError } from '../shared/errors.ts';
import { checkSortedKeys } from '../shared/keys.ts';
import { BufferPool } from '../shared/pool.ts';
import { decodeObject, encodeJson } from '../shared/protocol/control.ts';
import { type Frame, HEADER_BYTES, MsgType, setRequestId, type TaskStamp } from '../shared/protocol/frame.ts';
import { asPullReply, encodePull, encodePush, type KvKeys } from '../shared/protocol/kv.ts';
import { Ring, type TableShape } from '../shared/ring.ts';
import { type ReplyFn, RpcPeer } from '../shared/rpc.ts';
import type { TableSpec } from '../shared/table.ts';
import { type Dialer, partsLength, type TransportKind } from '../shared/transport/types.ts';
import { type Keys, KvSubscription, type SubSlice, type Subscription, type SubscriptionHost } from './subscription.ts';

export type { Keys, Subscription };

export interface WorkerOptions {
  /**
   * Where the worker learns the ring, the node addresses and the job's tables: the address of any
   * server node (asked with RING), or a function that fetches them (a browser asks the gateway,
   * whose addresses point at its relays).
   */
  seed: string | (() => Promise<ClusterInfo>);
  /** Dialers by transport; for each node the first kind in `prefer` it has an address for is used. */
  dialers: Partial<Record<TransportKind, Dialer>>;
  prefer?: TransportKind[];
  job?: number;
  /** u32 id stamped on pushes; random when absent. */
  workerId?: number;
  timeoutMs?: number;
  /** How often a slice is resent after its connection was lost before the request fails. */
  retries?: number;
}

const RETRYABLE = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_CONNECT_FAILED']);

/** Bytes of frames (header included) the worker sent and received, by kind. */
export interface WorkerBytes {
  /** PUSH frames built (a slice resent after a lost connection counts again). */
  pushed: number;
  /** PULL, SUBSCRIBE and UNSUBSCRIBE frames built. */
  requested: number;
  /** PULL_REPLY frames received. */
  pulled: number;
  /** PUBLISH frames received for live subscriptions. */
  published: number;
}

export class Worker implements SubscriptionHost {
  readonly id: number;
  /** Traffic counters (monotonic; read them before and after an iteration for per-iteration bytes). */
  readonly bytes: WorkerBytes = { pushed: 0, requested: 0, pulled: 0, published: 0 };
  /** Frames sent to server nodes (PUSH, PULL, SUBSCRIBE, UNSUBSCRIBE; resends count again); monotonic. */
  framesSent = 0;
  private readonly peers = new Map<string, Promise<RpcPeer>>();
  /** The peers of `peers` that are connected, for sending without waiting on a promise. */
  private readonly ready = new Map<string, RpcPeer>();
  /** @internal Lends the heads of long key lists (sparse requests); they come back through onSent. */
  readonly pool = new BufferPool();
  private readonly ops = new Map<number, Promise<Float32Array | undefined>>();
  private readonly tables = new Map<string, TableSpec>();
  private ring!: Ring;
  private info!: ClusterInfo;
  private nextTs = 1;
  /** Seq of ad-hoc (task 0) pushes: never restarts, or a node would take new pushes for resends. */
  private adhocSeq = 0;
  private taskSeq = 0;
  private task = 0;
  private attempt = 0;
  /** Live subscription slices by their wire id (unique within this worker). */
  private readonly subSlices = new Map<number, SubSlice>();
  private nextSub = 1;
  private closing = false;

  private constructor(private readonly opts: WorkerOptions) {
    this.id = opts.workerId ?? crypto.getRandomValues(new Uint32Array(1))[0];
  }

  /** Connects to the cluster through `opts.seed` and loads the ring and the job's tables. */
  static async connect(opts: WorkerOptions): Promise<Worker> {
    const w = new Worker(opts);
    await w.refresh(opts.seed);
    return w;
  }

  get job(): number {
    return this.opts.job ?? 0;
  }

  /** Reloads ring, addresses and tables from `via` (a node address or a fetch function), else the seed. */
  async refresh(via: WorkerOptions['seed'] = this.opts.seed): Promise<void> {
    this.install(typeof via === 'function' ? await via() : await this.askRing(via));
  }

  private async askRing(address: string): Promise<ClusterInfo> {
    const peer = new RpcPeer(await this.dialerFor(address).dial(address), this.opts.timeoutMs);
    try {
      return parseClusterInfo(decodeObject(await peer.call((id) => encodeJson(MsgType.RING, id, {}, this.job))));
    } finally {
      peer.close();
    }
  }

  private install(info: ClusterInfo): void {
    this.info = info;
    this.ring = Ring.fromJSON(info.ring);
    this.tables.clear();
    for (const t of info.tables) this.tables.set(t.name, t);
  }

  /**
   * Stamps later pushes with this scheduler task (task 0: none); a task's seqs start at 0 for
   * every attempt, so a re-run pushes the same (task, seq) identities as the run it replaces.
   */
  setTask(task: number, attempt: number): void {
    this.task = task;
    this.attempt = attempt;
    this.taskSeq = 0;
  }

  table(name: string): KvTable {
    const spec = this.tables.get(name);
    if (!spec) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', name);
    return new KvTable(this, spec);
  }

  /** Resolves when request `ts` is done: with the values for a pull, undefined for a push. */
  wait(ts: number): Promise<Float32Array | undefined> {
    const op = this.ops.get(ts);
    if (!op) return Promise.reject(new TabshardError('TS_ERR_UNKNOWN_TIMESTAMP', String(ts)));
    this.ops.delete(ts);
    return op;
  }

  close(): void {
    this.closing = true;
    for (const s of [...this.subSlices.values()]) s.sub.close();
    for (const p of this.peers.values())
      p.then(
        (x) => x.close(),
        () => {},
      );
    this.peers.clear();
    this.ready.clear();
  }

  /** @internal Registers a request and returns its timestamp. */
  track(run: () => Promise<Float32Array | undefined>, after?: number): number {
    const ts = this.nextTs++;
    const dep = after === undefined ? undefined : this.ops.get(after);
    const op = dep ? dep.then(run) : run();
    op.catch(() => {}); // the rejection is delivered by wait(); avoid an unhandled-rejection crash
    this.ops.set(ts, op);
    return ts;
  }

  /** @internal The stamp `stamps(1)` would return next, without taking it. */
  peekStamp(): TaskStamp {
    return {
      worker: this.id,
      task: this.task,
      attempt: this.attempt,
      seq: this.task === 0 ? this.adhocSeq : this.taskSeq,
    };
  }

  /**
   * @internal Stamps for the `n` slices of one push: each slice has its own seq, because a
   * node may own several slices of one request and applies each (task, seq) at most once.
   */
  stamps(n: number): TaskStamp[] {
    const out: TaskStamp[] = [];
    for (let i = 0; i < n; i++) {
      const seq = this.task === 0 ? this.adhocSeq++ : this.taskSeq++;
      out.push({ worker: this.id, task: this.task, attempt: this.attempt, seq });
    }
    return out;
  }

  /**
   * Dials every server node now rather than at the first request to it; resolves with the
   * transport each connection uses (a fallback dialer may have chosen `ws` over `webrtc`).
   */
  async connectAll(): Promise<Record<string, TransportKind>> {
    const nodes = this.ring.nodes;
    const peers = await Promise.all(nodes.map((n) => this.peer(n)));
    return Object.fromEntries(nodes.map((n, i) => [n, peers[i].conn.kind]));
  }

  /** The cluster layout this worker uses (ring, node addresses, tables). */
  get cluster(): ClusterInfo {
    return this.info;
  }

  /** @internal */
  get currentRing(): Ring {
    return this.ring;
  }

  /** @internal Sends one slice to `node`, redialling and resending after a lost connection. */
  send(node: string, build: (id: number) => Uint8Array[]): Promise<Frame> {
    return new Promise((resolve, reject) => this.sendSlice(node, build, (err, f) => (err ? reject(err) : resolve(f!))));
  }

  /**
   * @internal Callback form of `send` (the hot path: no promise per slice). `done` runs once.
   * Heads lent by `pool` go back to it when the transport has sent them.
   */
  sendSlice(node: string, build: (id: number) => Uint8Array[], done: ReplyFn, attempt = 0): void {
    // Callbacks are written inline: a named closure would cost a defineProperty per call under tsx.
    const ready = this.ready.get(node);
    if (ready !== undefined && !ready.closed) {
      ready.request(build, (err, f) => this.replied(node, build, done, attempt, err, f), this.giveBack);
      return;
    }
    let p: Promise<RpcPeer>;
    try {
      p = this.peer(node);
    } catch (err) {
      this.replied(node, build, done, attempt, toTabshardError(err), null);
      return;
    }
    p.then(
      (peer) => peer.request(build, (err, f) => this.replied(node, build, done, attempt, err, f), this.giveBack),
      (err) => this.replied(node, build, done, attempt, toTabshardError(err), null),
    );
  }

  /** Passes a slice's outcome to `done`, or resends it over a new connection after a lost one. */
  private replied(
    node: string,
    build: (id: number) => Uint8Array[],
    done: ReplyFn,
    attempt: number,
    err: TabshardError | null,
    f: Frame | null,
  ): void {
    if (err && RETRYABLE.has(err.code) && attempt < (this.opts.retries ?? 3)) {
      this.peers.delete(node);
      this.ready.delete(node);
      this.sendSlice(node, build, done, attempt + 1);
    } else done(err, f);
  }

  private readonly giveBack = (parts: Uint8Array[]): void => this.pool.give(parts[0]);

  /** @internal SubscriptionHost: sends over an open connection only (a closed one has no subscriptions left to drop). */
  sendIfConnected(node: string, build: (id: number) => Uint8Array[]): void {
    const peer = this.ready.get(node);
    if (peer !== undefined && !peer.closed) peer.request(build, () => {}, this.giveBack);
  }

  /** @internal SubscriptionHost */
  addSlice(make: (id: number) => SubSlice): SubSlice {
    const next = (id: number) => (id >= 0xffffffff ? 1 : id + 1); // u32 ids, 0 never used
    let id = this.nextSub;
    while (this.subSlices.has(id)) id = next(id);
    this.nextSub = next(id);
    const s = make(id);
    this.subSlices.set(id, s);
    return s;
  }

  /** @internal SubscriptionHost */
  dropSlice(s: SubSlice): void {
    if (this.subSlices.get(s.id) === s) this.subSlices.delete(s.id);
  }

  /** @internal SubscriptionHost: counts a request's bytes (PULL, SUBSCRIBE, UNSUBSCRIBE) and returns it. */
  countRequest(parts: Uint8Array[]): Uint8Array[] {
    this.framesSent++;
    this.bytes.requested += partsLength(parts);
    return parts;
  }

  /** @internal Counts a push's bytes and returns it. */
  countPush(parts: Uint8Array[]): Uint8Array[] {
    this.framesSent++;
    this.bytes.pushed += partsLength(parts);
    return parts;
  }

  /** A PUBLISH from `node`: into the subscription slice it names, if that slice is this node's. */
  private onPublish(node: string, f: Frame): void {
    const s = this.subSlices.get(f.requestId);
    if (s !== undefined && s.node === node && s.sub.deliver(s, f))
      this.bytes.published += HEADER_BYTES + (f.values?.byteLength ?? 0);
  }

  /** The connection to `node` was lost, and its subscriptions with it: subscribe again over a new one. */
  private resubscribe(node: string): void {
    if (this.closing) return;
    for (const s of this.subSlices.values()) if (s.node === node) s.sub.subscribe(s);
  }

  private address(node: string): string {
    const a = this.info.addresses[node];
    for (const kind of this.opts.prefer ?? (['webrtc', 'tcp', 'ws', 'memory'] as TransportKind[]))
      if (a?.[kind] && this.opts.dialers[kind]) return a[kind];
    throw new TabshardError('TS_ERR_CONNECT_FAILED', `no usable address for node ${node}`);
  }

  private dialerFor(address: string): Dialer {
    const kind = address.slice(0, address.indexOf(':')).split('+')[0] as TransportKind;
    const d = this.opts.dialers[kind];
    if (!d) throw new TabshardError('TS_ERR_CONNECT_FAILED', `no dialer for ${address}`);
    return d;
  }

  private peer(node: string): Promise<RpcPeer> {
    let p = this.peers.get(node);
    const stale = p === undefined;
    if (stale) {
      const address = this.address(node);
      p = this.dialerFor(address)
        .dial(address)
        .then((conn) => {
          const peer = new RpcPeer(conn, this.opts.timeoutMs);
          peer.onpublish = (f) => this.onPublish(node, f);
          conn.onclose = ((prev) => (err) => {
            prev?.(err);
            if (this.peers.get(node) === p) this.peers.delete(node);
            if (this.ready.get(node) === peer) this.ready.delete(node);
            this.resubscribe(node);
          })(conn.onclose);
          if (this.peers.get(node) === p) this.ready.set(node, peer);
          return peer;
        });
      p.catch(() => this.peers.delete(node));
      this.peers.set(node, p);
    }
    return p!;
  }
}

/** One table of the job, as seen by a worker. */
export class KvTable {
  private readonly shape: TableShape;

  constructor(
    private readonly w: Worker,
    readonly spec: TableSpec,
  ) {
    this.shape = { id: spec.id, keySpace: spec.keySpace, valueLength: spec.valueLength };
  }

  private count(keys: Keys): number {
    if (keys instanceof Float64Array) {
      checkSortedKeys(keys, this.spec.keySpace);
      return keys.length;
    }
    const { begin, end } = keys;
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > this.spec.keySpace)
      throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `range [${begin}, ${end})`);
    return end - begin;
  }

  /**
   * The owner of a non-empty key list that goes to one node, else null (a range, an empty list,
   * several owners, or keys slicing refuses: those take the path that checks keys first).
   */
  private oneOwner(keys: Keys): string | null {
    if (!(keys instanceof Float64Array) || keys.length === 0) return null;
    try {
      const s = this.w.currentRing.sliceKeys(this.shape, keys);
      return s.length === 1 ? s[0].owner : null;
    } catch {
      return null;
    }
  }

  /** The slices of `keys` per owner: wire keys and the offset (in keys) into the request. */
  private slices(keys: Keys): Array<{ owner: string; keys: KvKeys; at: number; n: number }> {
    const ring = this.w.currentRing;
    if (keys instanceof Float64Array)
      return ring.sliceKeys(this.shape, keys).map((s) => ({
        owner: s.owner,
        keys: { kind: 'list', keys: keys.subarray(s.begin, s.end) },
        at: s.begin,
        n: s.end - s.begin,
      }));
    return ring.sliceRange(this.shape, keys.begin, keys.end).map((r) => ({
      owner: r.owner,
      keys: { kind: 'range', begin: r.begin, end: r.end },
      at: r.begin - keys.begin,
      n: r.end - r.begin,
    }));
  }

  /**
   * Pushes `values` (d per key) for `keys`; returns a timestamp at once. `after` delays the
   * push until that earlier request is done (ps-lite's dependency).
   */
  push(keys: Keys, values: Float32Array, opts: { clock?: number; after?: number } = {}): number {
    const d = this.spec.valueLength;
    const { job } = this.w;
    const table = this.spec.id;
    const clock = opts.clock ?? 0;
    const owner = this.oneOwner(keys);
    if (owner !== null) {
      // A key list for one node is checked while it is encoded: one pass over the keys, not two.
      const list = keys as Float64Array;
      const task = this.w.peekStamp();
      const m = { requestId: 0, job, table, clock, task, keys: { kind: 'list', keys: list } as const, values };
      let first: Uint8Array[] | null = encodePush(m, { pool: this.w.pool, keySpace: this.spec.keySpace });
      if (values.length !== list.length * d) {
        this.w.pool.give(first[0]);
        throw new TabshardError('TS_ERR_VALUE_LENGTH', `${values.length} values for ${list.length} keys x ${d}`);
      }
      this.w.stamps(1);
      return this.w.track(
        () =>
          new Promise<undefined>((resolve, reject) =>
            this.w.sendSlice(
              owner,
              (requestId) => {
                if (first === null) return this.w.countPush(encodePush({ ...m, requestId }, { pool: this.w.pool })); // a resend
                const parts = first;
                first = null;
                setRequestId(parts[0], requestId);
                return this.w.countPush(parts);
              },
              (err) => (err ? reject(err) : resolve(undefined)),
            ),
          ),
        opts.after,
      );
    }
    const n = this.count(keys);
    if (values.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${values.length} values for ${n} keys x ${d}`);
    const slices = this.slices(keys);
    const stamps = this.w.stamps(slices.length);
    const pool = this.w.pool;
    return this.w.track(
      () =>
        new Promise<undefined>((resolve, reject) => {
          if (slices.length === 0) resolve(undefined);
          const done = countdown(slices.length, resolve, reject);
          for (let i = 0; i < slices.length; i++) {
            const s = slices[i];
            const task = stamps[i];
            const v = values.subarray(s.at * d, (s.at + s.n) * d);
            this.w.sendSlice(
              s.owner,
              (requestId) =>
                this.w.countPush(encodePush({ requestId, job, table, clock, task, keys: s.keys, values: v }, { pool })),
              done,
            );
          }
        }),
      opts.after,
    );
  }

  /** Pulls the values of `keys` (into `out` when given); `wait(ts)` resolves with them. */
  pull(keys: Keys, opts: { out?: Float32Array; clock?: number; after?: number } = {}): number {
    const d = this.spec.valueLength;
    const { job } = this.w;
    const table = this.spec.id;
    const clock = opts.clock ?? 0;
    // As in push; only without `after`, since a pull that waits is sliced when it is sent.
    const owner = opts.after === undefined ? this.oneOwner(keys) : null;
    if (owner !== null) {
      const list = keys as Float64Array;
      const n = list.length;
      const m = { requestId: 0, job, table, clock, keys: { kind: 'list', keys: list } as const };
      let first: Uint8Array[] | null = encodePull(m, { pool: this.w.pool, keySpace: this.spec.keySpace });
      if (opts.out && opts.out.length !== n * d) {
        this.w.pool.give(first[0]);
        throw new TabshardError('TS_ERR_VALUE_LENGTH', `out holds ${opts.out.length}, needs ${n * d}`);
      }
      return this.w.track(
        () =>
          new Promise<Float32Array>((resolve, reject) =>
            this.w.sendSlice(
              owner,
              (requestId) => {
                if (first === null) return this.w.countRequest(encodePull({ ...m, requestId }, { pool: this.w.pool })); // a resend
                const parts = first;
                first = null;
                setRequestId(parts[0], requestId);
                return this.w.countRequest(parts);
              },
              (err, f) => {
                if (err) reject(err);
                else this.assemble([{ at: 0, n }], [asPullReply(f!)], n, opts.out, resolve, reject);
              },
            ),
          ),
      );
    }
    const n = this.count(keys);
    if (opts.out && opts.out.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `out holds ${opts.out.length}, needs ${n * d}`);
    const pool = this.w.pool;
    return this.w.track(
      () =>
        new Promise<Float32Array>((resolve, reject) => {
          const slices = this.slices(keys);
          const parts: Float32Array[] = new Array(slices.length);
          let left = slices.length;
          if (left === 0) return this.assemble(slices, parts, n, opts.out, resolve, reject);
          for (let i = 0; i < slices.length; i++) {
            const s = slices[i];
            this.w.sendSlice(
              s.owner,
              (requestId) => this.w.countRequest(encodePull({ requestId, job, table, clock, keys: s.keys }, { pool })),
              (err, f) => {
                if (err) return reject(err);
                parts[i] = asPullReply(f!);
                if (--left === 0) this.assemble(slices, parts, n, opts.out, resolve, reject);
              },
            );
          }
        }),
      opts.after,
    );
  }

  /**
   * Subscribes to the values of `keys` (eager SSP): every node that owns some of them publishes
   * their current values whenever the job's slowest clock advances (ServerManager.publish), and
   * once at once when the job has published a clock before. The slices a node owns are merged
   * into one SUBSCRIBE (a range that falls in several runs on one node travels as a key list).
   * Over a lost connection the worker subscribes again.
   */
  subscribe(keys: Keys): Subscription {
    const n = this.count(keys);
    const own: Keys = keys instanceof Float64Array ? keys.slice() : { begin: keys.begin, end: keys.end };
    const byNode = new Map<string, Array<{ keys: KvKeys; at: number; n: number }>>();
    for (const s of this.slices(own)) {
      const runs = byNode.get(s.owner);
      if (runs) runs.push(s);
      else byNode.set(s.owner, [s]);
    }
    const parts = [...byNode].map(([node, runs]) => ({
      node,
      keys: runs.length === 1 ? runs[0].keys : { kind: 'list' as const, keys: runKeys(own, runs) },
      runs: runs.map(({ at, n }) => ({ at, n })),
    }));
    return new KvSubscription(this.w, this.spec, own, n, parts);
  }

  /** Checks every reply before copying any, so a failed pull leaves `out` untouched. */
  private assemble(
    slices: Array<{ at: number; n: number }>,
    parts: Float32Array[],
    n: number,
    out: Float32Array | undefined,
    resolve: (v: Float32Array) => void,
    reject: (e: TabshardError) => void,
  ): void {
    const d = this.spec.valueLength;
    let bytes = 0;
    for (let i = 0; i < parts.length; i++) bytes += HEADER_BYTES + parts[i].byteLength;
    this.w.bytes.pulled += bytes;
    for (let i = 0; i < parts.length; i++)
      if (parts[i].length !== slices[i].n * d) {
        reject(new TabshardError('TS_ERR_VALUE_LENGTH', `reply of ${parts[i].length} values`));
        return;
      }
    if (!out && parts.length === 1) {
      resolve(parts[0]);
      return;
    }
    const o = out ?? new Float32Array(n * d);
    for (let i = 0; i < parts.length; i++) o.set(parts[i], slices[i].at * d);
    resolve(o);
  }
}

/** The keys of several runs of a request (offsets `at`, `n` keys each), as one sorted list. */
function runKeys(keys: Keys, runs: ReadonlyArray<{ at: number; n: number }>): Float64Array {
  const out = new Float64Array(runs.reduce((a, r) => a + r.n, 0));
  let o = 0;
  for (const r of runs)
    if (keys instanceof Float64Array) {
      out.set(keys.subarray(r.at, r.at + r.n), o);
      o += r.n;
    } else for (let i = 0; i < r.n; i++) out[o++] = keys.begin + r.at + i;
  return out;
}

/** A ReplyFn that resolves after `n` successful replies and rejects on the first error. */
function countdown(n: number, resolve: (v: undefined) => void, reject: (e: TabshardError) => void): ReplyFn {
  let left = n;
  return (err) => {
    if (err) reject(err);
    else if (--left === 0) resolve(undefined);
  };
}
