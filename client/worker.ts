/**
 * The worker library (ps-lite's shape; docs/workers.md): `push` and `pull` (client/kv-table.ts)
 * return a timestamp at once; `wait(ts)` resolves when that request is done (with the values,
 * for a pull). A request is sliced by the ring into one frame per owning node, each sent to its
 * owner, and replies reassembled.
 *
 * Every push frame is stamped (worker, task, attempt, seq), so a frame resent after a lost
 * connection is applied at most once by its server. The worker follows ring changes the nodes
 * push, and re-slices frames whose keys moved to their new owners (docs/workers.md, "When the
 * ring changes"). Used by Node workers and browser tabs alike: the transports are passed in as
 * dialers.
 */
import { type ClusterInfo, parseClusterInfo } from '../shared/cluster.ts';
import { TabshardError, toTabshardError } from '../shared/errors.ts';
import { KeyListCache } from '../shared/key-cache.ts';
import { BufferPool } from '../shared/pool.ts';
import { decodeObject, encodeJson } from '../shared/protocol/control.ts';
import { type Frame, MsgType, type TaskStamp } from '../shared/protocol/frame.ts';
import { Ring } from '../shared/ring.ts';
import { type ReplyFn, RpcPeer } from '../shared/rpc.ts';
import type { Keys } from '../shared/slicing.ts';
import { sameTable, type TableSpec } from '../shared/table.ts';
import { type Dialer, partsLength, type TransportKind } from '../shared/transport/types.ts';
import { Credentials } from './grants.ts';
import { KvTable, type TableHost, type TaskRef } from './kv-table.ts';
import { RingWaits } from './ring-waits.ts';
import type { SubSlice, Subscription, SubscriptionHost } from './subscription.ts';
import { TaskStamps } from './task-stamps.ts';

export type { Keys, Subscription, TaskRef };
export { KvTable };

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
  /** How often a frame is resent after its connection was lost (or its cached keys were not found) before the request fails. */
  retries?: number;
  /** Key-list caching (PROTOCOL.md §5.2): send a long key list once, then its hash. Default true. */
  cacheKeys?: boolean;
  /**
   * The cluster's admin token: each node connection then says HELLO as admin first, and may push
   * outside a task (an operator's tool or a test oracle, never a volunteer's tab).
   */
  adminToken?: string;
}

const RETRYABLE = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_CONNECT_FAILED']);
/** Failures after which a frame's keys may belong to other nodes (see Worker.sendSlice). */
/** How often a frame refused with TS_ERR_NOT_OWNER under the worker's newest ring is asked again (the node catching up). */
const NOT_OWNER_TRIES = 8;
const FAILOVER = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_CONNECT_FAILED', 'TS_ERR_TIMEOUT', 'TS_ERR_NOT_OWNER']);
/** How long a frame whose node failed waits for a newer ring before it is resent to the node again. */
const RING_WAIT_MS = 1000;

/** Bytes of frames (header included) the worker sent and received, by kind. */
export interface WorkerBytes {
  /** PUSH frames built (a frame resent after a lost connection counts again). */
  pushed: number;
  /** PULL, SUBSCRIBE and UNSUBSCRIBE frames built. */
  requested: number;
  /** PULL_REPLY frames received. */
  pulled: number;
  /** PUBLISH frames received for live subscriptions. */
  published: number;
}

export class Worker implements SubscriptionHost, TableHost {
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
  /** The KvTable of each table name handed out since the tables were last loaded. */
  private readonly kvTables = new Map<string, KvTable>();
  private ring!: Ring;
  private info!: ClusterInfo;
  private nextTs = 1;
  /** Push stamps and the receipts the nodes gave them. */
  private readonly taskStamps: TaskStamps;
  /** Per node: the key lists its current connection holds for this worker (key caching). */
  private readonly keyCaches = new Map<string, KeyListCache<true>>();
  /** Live subscription slices by their wire id (unique within this worker). */
  private readonly subSlices = new Map<number, SubSlice>();
  private nextSub = 1;
  private closing = false;
  /** `awaitRing` calls still waiting, and the seed's polling for them. */
  private readonly ringWaits = new RingWaits(() => this.refreshQuietly());
  /** The background refresh in flight (ring pushes naming unknown nodes, `awaitRing`'s polls). */
  private refreshing: Promise<void> | null = null;
  /** Capabilities from the scheduler (and an admin token), presented on every node connection. */
  private readonly creds: Credentials;

  private constructor(private readonly opts: WorkerOptions) {
    this.id = opts.workerId ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.taskStamps = new TaskStamps(this.id);
    this.creds = new Credentials(() => this.job, opts.adminToken);
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

  /**
   * Reloads ring, addresses and tables from `via` (a node address or a fetch function), else the
   * seed. The ring only moves forward: a seed that answers with an older ring than the one this
   * worker has (one pushed to it, say) leaves the ring as it is.
   */
  async refresh(via: WorkerOptions['seed'] = this.opts.seed): Promise<void> {
    this.install(typeof via === 'function' ? await via() : await this.askRing(via));
  }

  /**
   * Resolves true as soon as this worker's ring version is above `after` (a ring pushed by a
   * node, or found by asking the seed every ~150 ms meanwhile, failures of which are ignored),
   * false after `ms` or when the worker closes.
   */
  awaitRing(after: number, ms: number): Promise<boolean> {
    if (this.ring.version > after) return Promise.resolve(true);
    if (this.closing) return Promise.resolve(false);
    return this.ringWaits.wait(after, ms);
  }

  /** `refresh()` from the seed in the background, errors ignored; one at a time. */
  private refreshQuietly(): Promise<void> {
    if (this.refreshing === null && !this.closing)
      this.refreshing = this.refresh().then(
        () => {
          this.refreshing = null;
        },
        () => {
          this.refreshing = null;
        },
      );
    return this.refreshing ?? Promise.resolve();
  }

  private async askRing(address: string): Promise<ClusterInfo> {
    const peer = new RpcPeer(await this.dialerFor(address).dial(address), this.opts.timeoutMs);
    try {
      this.creds.presentAll(peer, true);
      return parseClusterInfo(decodeObject(await peer.call((id) => encodeJson(MsgType.RING, id, {}, this.job))));
    } finally {
      peer.close();
    }
  }

  private install(info: ClusterInfo): void {
    const ring = Ring.fromJSON(info.ring);
    const prev = this.ring as Ring | undefined;
    if (prev !== undefined && ring.version < prev.version) {
      // A seed behind the ring this worker follows: keep that ring, and its nodes' addresses.
      this.info = { ...info, ring: this.info.ring, addresses: { ...this.info.addresses, ...info.addresses } };
    } else {
      this.info = info;
      this.setRing(ring);
    }
    this.tables.clear();
    for (const t of info.tables) this.tables.set(t.name, t);
    // Handles of tables left as they were stay (refreshes while a ring is awaited must not churn them).
    for (const [name, kv] of this.kvTables) {
      const spec = this.tables.get(name);
      if (spec === undefined || !sameTable(spec, kv.spec)) this.kvTables.delete(name);
    }
  }

  /**
   * A ring pushed by a node (PROTOCOL.md §6, RING push). A newer one is installed in place when
   * every node of it has a known address (tables and their handles kept), else the worker asks
   * the seed for the whole cluster info.
   */
  private onRingPush(f: Frame): void {
    let ring: Ring;
    try {
      ring = Ring.fromJSON(decodeObject(f).ring);
    } catch {
      return; // not a ring: ignored, like a malformed PUBLISH
    }
    if (this.closing || ring.version <= this.ring.version) return;
    const known = this.info.addresses;
    if (ring.nodes.every((n) => known[n] !== undefined)) {
      this.info = {
        ...this.info,
        ring: ring.toJSON(),
        addresses: Object.fromEntries(ring.nodes.map((n) => [n, known[n]])),
      };
      this.setRing(ring);
    } else void this.refreshQuietly();
  }

  /**
   * Makes `ring` the worker's. When it is newer than the one before: live subscriptions subscribe
   * again under it, the connections to nodes no longer in it are closed (their pending requests
   * fail with TS_ERR_TRANSPORT_CLOSED and are re-sliced, see `replied`), and `awaitRing` calls
   * waiting for it resolve. KvTables slice later requests by it by themselves (they compare the
   * Ring object).
   */
  private setRing(ring: Ring): void {
    const prev = this.ring as Ring | undefined;
    this.ring = ring;
    if (prev === undefined || ring.version <= prev.version) return;
    // Subscriptions first, so that none subscribes again to a node whose connection closes below.
    for (const sub of new Set([...this.subSlices.values()].map((s) => s.sub))) sub.reslice();
    for (const node of prev.nodes) if (!ring.nodes.includes(node)) this.forget(node);
    this.ringWaits.settle(ring.version);
  }

  /** Closes and drops the connection to a node that left the ring (or the dial under way). */
  private forget(node: string): void {
    const p = this.peers.get(node);
    this.dropPeer(node);
    p?.then(
      (peer) => peer.close(),
      () => {},
    );
  }

  /**
   * Stamps later pushes that name no task of their own with this scheduler task (task 0: none).
   * A task's seq counter starts at 0 for every attempt (and again here), so a re-run under the
   * same ring pushes the same (task, seq) identities as the run it replaces (see `stamps`).
   */
  setTask(task: number, attempt: number): void {
    this.taskStamps.setTask(task, attempt);
  }

  /**
   * Presents a capability from the scheduler (PROTOCOL.md §6.2) — the job's read capability, or
   * with `task` that task's — on every node connection now up and on each one opened later,
   * before any request sent after this call.
   */
  present(token: string, task?: number): void {
    this.creds.add(token, task, this.ready.values());
  }

  /** Forgets the capability of `task` (its pushes are done). */
  forgetTask(task: number): void {
    this.creds.drop(task);
  }

  /** @internal TableHost: keeps a task push's receipt for the task's TASK_DONE (`takeReceipts`). */
  receipt(stamp: TaskStamp, body: Uint8Array): void {
    this.taskStamps.receipt(stamp, body);
  }

  /**
   * The receipts the nodes gave the pushes of `task` at `attempt` (PROTOCOL.md §6.3), for its
   * TASK_DONE; forgets them. Empty from nodes that issue none.
   */
  takeReceipts(task: number, attempt: number): string[] {
    return this.taskStamps.takeReceipts(task, attempt);
  }

  /** CAP frames (or admin HELLOs) the nodes refused. */
  get credentialsRefused(): number {
    return this.creds.refused;
  }

  table(name: string): KvTable {
    let t = this.kvTables.get(name);
    if (t === undefined) {
      const spec = this.tables.get(name);
      if (!spec) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', name);
      t = new KvTable(this, spec);
      this.kvTables.set(name, t);
    }
    return t;
  }

  /**
   * @internal TableHost: the key lists `node`'s connection holds for this worker (the worker's
   * mirror of the node's cache, PROTOCOL.md §5.2). It belongs to the connection in use or being
   * dialled, and is dropped with it.
   */
  keyCache(node: string): KeyListCache<true> {
    let c = this.keyCaches.get(node);
    if (!c) {
      c = new KeyListCache<true>();
      this.keyCaches.set(node, c);
    }
    return c;
  }

  /** @internal TableHost: whether key lists are cached (WorkerOptions.cacheKeys). */
  get cachesKeys(): boolean {
    return this.opts.cacheKeys !== false;
  }

  /** @internal TableHost: counts a pull reply's bytes. */
  countPulled(bytes: number): void {
    this.bytes.pulled += bytes;
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
    this.ringWaits.close();
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

  /**
   * @internal Stamps for the `n` frames of one push of `task` (default: the `setTask` one),
   * sliced under the worker's current ring: one seq per frame (client/task-stamps.ts). With
   * `take` false the stamps are only looked at (a push that then fails to encode takes none).
   */
  stamps(n: number, task: TaskRef = this.taskStamps.current, take = true): TaskStamp[] {
    return this.taskStamps.stamps(n, task, take, this.ring.version);
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

  /**
   * How each node's connection travels: `turn` for a WebRTC data channel relayed by a TURN server,
   * else its transport kind (`webrtc` direct, `ws` the gateway's relay, …).
   */
  async routes(): Promise<Record<string, string>> {
    const nodes = this.ring.nodes;
    const conns = (await Promise.all(nodes.map((n) => this.peer(n)))).map((p) => p.conn);
    const routes = await Promise.all(
      conns.map(async (c) => ((await c.route?.().catch(() => null)) === 'turn' ? 'turn' : c.kind)),
    );
    return Object.fromEntries(nodes.map((n, i) => [n, routes[i]]));
  }

  /** The routes of `routes()` in one word for the scheduler and the console: `webrtc`, `turn`, `ws`, or e.g. `turn+webrtc`. */
  static routeSummary(routes: Record<string, string>): string {
    return [...new Set(Object.values(routes))].sort().join('+') || 'none';
  }

  /** The cluster layout this worker uses (ring, node addresses, tables). */
  get cluster(): ClusterInfo {
    return this.info;
  }

  /** @internal */
  get currentRing(): Ring {
    return this.ring;
  }

  /**
   * @internal Sends one frame to `node`, redialling and resending after a lost connection; `done`
   * runs once, with a reply frame valid only while it runs (RpcPeer.request). Heads lent by
   * `pool` go back to it when the transport has sent them.
   *
   * `version` is the ring version the frame was sliced under. With `moved`, a frame whose keys
   * may now belong elsewhere is handed to it instead (the caller re-slices it under the current
   * ring): one refused with TS_ERR_NOT_OWNER, or lost (TS_ERR_TRANSPORT_CLOSED,
   * TS_ERR_CONNECT_FAILED, TS_ERR_TIMEOUT), when its node is no longer in the ring or a newer
   * ring is in. Otherwise the first resend, and any resend after a connection that was up
   * dropped, goes to the same node at once (a dropped connection to a live node just redials);
   * after a redial that could not connect, a timeout, or NOT_OWNER, the frame waits up to
   * RING_WAIT_MS for a newer ring (`awaitRing`) before it is resent to the same node, or fails.
   * NOT_OWNER without a newer ring then: one more refresh, else the frame is resent to the same
   * node (which may not have installed the worker's ring yet), up to `retries` times, then fails.
   * See docs/workers.md, "When the ring changes".
   */
  sendSlice(
    node: string,
    build: (id: number) => Uint8Array[],
    done: ReplyFn,
    version = this.ring.version,
    moved?: (err: TabshardError) => void,
  ): void {
    this.send(node, build, done, version, moved, 0);
  }

  private send(
    node: string,
    build: (id: number) => Uint8Array[],
    done: ReplyFn,
    version: number,
    moved: ((err: TabshardError) => void) | undefined,
    attempt: number,
  ): void {
    // Callbacks are written inline: a named closure would cost a defineProperty per call under tsx.
    const ready = this.ready.get(node);
    if (ready !== undefined && !ready.closed) {
      ready.request(build, (err, f) => this.replied(node, build, done, version, moved, attempt, err, f), this.giveBack);
      return;
    }
    let p: Promise<RpcPeer>;
    try {
      p = this.peer(node);
    } catch (err) {
      this.replied(node, build, done, version, moved, attempt, toTabshardError(err), null);
      return;
    }
    p.then(
      (peer) =>
        peer.request(
          build,
          (err, f) => this.replied(node, build, done, version, moved, attempt, err, f),
          this.giveBack,
        ),
      (err) => this.replied(node, build, done, version, moved, attempt, toTabshardError(err), null),
    );
  }

  /**
   * Passes a frame's outcome to `done`, resends it (over a new connection after a lost one; in
   * full after TS_ERR_KEYS_NOT_CACHED), or hands it to `moved` to be re-sliced (see sendSlice).
   */
  private replied(
    node: string,
    build: (id: number) => Uint8Array[],
    done: ReplyFn,
    version: number,
    moved: ((err: TabshardError) => void) | undefined,
    attempt: number,
    err: TabshardError | null,
    f: Frame | null,
  ): void {
    if (err === null) {
      done(null, f);
      return;
    }
    const retries = this.opts.retries ?? 3;
    const code = err.code;
    if (code === 'TS_ERR_KEYS_NOT_CACHED') {
      // The node no longer has a list this frame named by its hash: `build` sends it in full now.
      if (attempt < retries) this.send(node, build, done, version, moved, attempt + 1);
      else done(err, null);
      return;
    }
    if (this.closing) {
      done(err, null);
      return;
    }
    if (moved === undefined || !FAILOVER.has(code)) {
      if (RETRYABLE.has(code) && attempt < retries) {
        this.dropClosed(node);
        this.send(node, build, done, version, moved, attempt + 1);
      } else done(err, f);
      return;
    }
    if (this.ring.version > version || !this.ring.nodes.includes(node)) {
      moved(err);
      return;
    }
    if (RETRYABLE.has(code) && attempt < retries && (attempt === 0 || code === 'TS_ERR_TRANSPORT_CLOSED')) {
      // A lost connection (the node was up) is redialled at once, like the first resend of all.
      this.dropClosed(node);
      this.send(node, build, done, version, moved, attempt + 1);
      return;
    }
    // The node refused the keys, cannot be reached, or did not answer: a newer ring may be on its way.
    // A refusal comes from a live node whose ring differs: the newer ring is usually ms away.
    this.awaitRing(version, code === 'TS_ERR_NOT_OWNER' ? 50 : RING_WAIT_MS).then((newer) => {
      if (newer) moved(err);
      else if (this.closing) done(err, null);
      else if (RETRYABLE.has(code) && attempt < retries) {
        this.dropClosed(node);
        this.send(node, build, done, version, moved, attempt + 1);
      } else if (code === 'TS_ERR_NOT_OWNER')
        // The node may be a ring behind this worker (installs reach nodes one by one): ask again
        // after a pause, a few times, before the request fails.
        this.refreshQuietly().then(() => {
          if (this.ring.version > version) moved(err);
          else if (attempt < NOT_OWNER_TRIES)
            setTimeout(() => this.send(node, build, done, version, moved, attempt + 1), 25 << Math.min(attempt, 4));
          else done(err, null);
        });
      else done(err, null);
    });
  }

  /**
   * Before a resend after a lost connection: forgets the node's connection if it is the closed
   * one, not a new one that another frame's resend is already dialling.
   */
  private dropClosed(node: string): void {
    if (this.ready.get(node)?.closed) this.dropPeer(node);
  }

  private dropPeer(node: string): void {
    this.peers.delete(node);
    this.ready.delete(node);
    this.keyCaches.delete(node);
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
  private onPublish(node: string, f: Frame, bytes: number): void {
    const s = this.subSlices.get(f.requestId);
    if (s !== undefined && s.node === node && s.sub.deliver(s, f)) this.bytes.published += bytes;
  }

  /** The connection to `node` was lost, and its subscriptions with it: subscribe again over a new one. */
  private resubscribe(node: string): void {
    if (this.closing || !this.ring.nodes.includes(node)) return;
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
          // Credentials first: every request on this connection comes after them.
          this.creds.presentAll(peer);
          peer.onpublish = (f, bytes) => this.onPublish(node, f, bytes);
          peer.onring = (f) => this.onRingPush(f);
          conn.onclose = ((prev) => (err) => {
            prev?.(err);
            if (this.peers.get(node) === p) {
              this.peers.delete(node);
              this.keyCaches.delete(node); // the node forgets this connection's lists with it
            }
            if (this.ready.get(node) === peer) this.ready.delete(node);
            this.resubscribe(node);
          })(conn.onclose);
          if (this.peers.get(node) === p) this.ready.set(node, peer);
          return peer;
        });
      p.catch(() => this.dropPeer(node));
      this.peers.set(node, p);
    }
    return p!;
  }
}
