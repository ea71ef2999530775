/**
 * A server node (docs/architecture.md §1): holds table slices of one or more jobs, applies pushes with
 * the table's updater, answers pulls, and reports stats. One dispatcher handles every frame;
 * anything that goes wrong with one frame is answered with a coded ERROR frame and the node
 * keeps serving (a malformed frame from a tab must never crash or corrupt a server).
 */
import { type ClusterInfo, parseClusterInfo } from '../../shared/cluster.ts';
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { BufferPool } from '../../shared/pool.ts';
import { decodeObject, encodeError, encodeJson, parseHello } from '../../shared/protocol/control.ts';
import { decodeFrame, Flag, type Frame, HEADER_BYTES, MsgType } from '../../shared/protocol/frame.ts';
import { asPull, asPush, countKeys, encodeAck, encodePullReply, type KvKeys } from '../../shared/protocol/kv.ts';
import { asSubscribe, asUnsubscribe, parseClock } from '../../shared/protocol/subscribe.ts';
import { Ring } from '../../shared/ring.ts';
import { parseTableSpec, sameTable, type TableSpec } from '../../shared/table.ts';
import type { Conn, Dialer, Listener } from '../../shared/transport/types.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { Access, type AccessStats, type KeySetStats } from './access.ts';
import { Chains } from './chain.ts';
import { checkpointJob, restoreJob } from './checkpoint.ts';
import type { GcTotals } from './gc-monitor.ts';
import { GroupFrames } from './group-frames.ts';
import { ConnKeyCaches } from './key-caching.ts';
import { checkOwner, type OwnsAllCache } from './ownership.ts';
import { type ReplicationStats, Replicator } from './replication.ts';
import { parseSettled } from './settled.ts';
import { type PublishStats, Subscriptions } from './subscriptions.ts';
import { Table } from './table.ts';
import { useZlibCodec } from './zlib-codec.ts';

/** Largest pull reply (header included), in bytes; larger requests are refused before anything is allocated. */
export const MAX_REPLY_BYTES = 256 * 1024 * 1024;

/** Largest key list decoded into the node's reused scratch (32 MiB of keys); longer lists get their own array. */
const SCRATCH_KEYS = 1 << 22;

export interface NodeStats {
  node: string;
  connections: number;
  frames: number;
  errors: number;
  /** Eager SSP: live subscriptions, PUBLISH frames and bytes handed to transports. */
  publish: PublishStats;
  tables: Array<{ job: number; id: number } & ReturnType<Table['stats']>>;
  /** Garbage collection in the node's process since it started (when the process reports it). */
  gc?: GcTotals;
  /** The installed ring's version (0: none from a manager yet). */
  ring: number;
  /** Chain replication: forwards and copies sent (docs/architecture.md §6). */
  replication: ReplicationStats | null;
  /** Capabilities (PROTOCOL.md §6.2): CAPs taken and requests refused, by code. */
  access: AccessStats;
  /** Key sets installed by KEYSET, and their keys in all. */
  keySets: KeySetStats;
}

/**
 * Sees each message a connection delivers before the node decodes it as a frame, and returns
 * true when it took the message: the node then neither decodes, counts nor answers it. `reply`
 * sends bytes back on the same connection (unchanged until sent); `msg` is only valid during
 * the call. What a handler takes skips framing, capabilities and the admin checks, from any peer
 * that reaches the node, so a handler must take only messages no frame can be (a first byte
 * that is not a protocol version) and bound what it sends. None by default; set only by a
 * program that builds its own node (a benchmark's baseline, bench/browser/echo-node.ts): no CLI
 * flag or environment variable sets one. A handler that throws gets the connection a coded ERROR.
 */
export type RawHandler = (msg: Uint8Array, reply: (bytes: Uint8Array) => void) => boolean;

export class ServerNode {
  private readonly jobs = new Map<number, Map<number, Table>>();
  private readonly listeners: Listener[] = [];
  private readonly conns = new Set<Conn>();
  /** Admin connections, capabilities and key sets (access.ts). */
  private readonly access: Access;
  /** Seals the receipts of task pushes (PROTOCOL.md §6.3): a node with an admin token issues them. */
  private readonly receipts: ReceiptKey | null;
  private readonly replicator: Replicator | null;
  /** FORWARD and MIGRATE from the other nodes of the group (group-frames.ts). */
  private readonly group: GroupFrames;
  /** Key lists each connection asked to have remembered (key caching, PROTOCOL.md §5.2). */
  private readonly keyCaches = new ConnKeyCaches();
  /** The installed layout: `chains` is the ring's, or during a join or drain its union with the next ring's. */
  private cluster: { info: ClusterInfo; ring: Ring; chains: Chains } | null = null;
  /** Per table: whether this node owns all of it under the ring (ownership.ts). */
  private readonly ownsAll: OwnsAllCache = new WeakMap();
  private frames = 0;
  private errors = 0;

  /** Decoded key lists of up to SCRATCH_KEYS keys (a frame is consumed before the next is decoded). */
  private scratchKeys = new Float64Array(0);
  /** Copied pull replies, lent until the transport has sent them. */
  private readonly replyPool = new BufferPool();
  private readonly subs = new Subscriptions(this.replyPool);
  private readonly keyScratch = (n: number): Float64Array => {
    if (n > SCRATCH_KEYS) return new Float64Array(n);
    if (this.scratchKeys.length < n) this.scratchKeys = new Float64Array(Math.max(n, 2 * this.scratchKeys.length));
    return this.scratchKeys;
  };

  constructor(
    readonly id: string,
    private readonly opts: {
      /** Takes messages before they are decoded (RawHandler; default none). */
      rawHandler?: RawHandler;
      adminToken?: string;
      gc?: () => GcTotals;
      /** How this node reaches the others (for replication); without one it never forwards. */
      dialer?: Dialer;
      /** The capability clock, ms since the epoch (default Date.now; tests inject one). */
      now?: () => number;
    } = {},
  ) {
    // Compressed pushes come from untrusted workers: inflate them with zlib, bounded by the declared size.
    useZlibCodec();
    this.access = new Access(!!opts.adminToken, opts.now);
    this.receipts = opts.adminToken ? new ReceiptKey(opts.adminToken) : null;
    const dialer = opts.dialer;
    this.replicator = dialer
      ? new Replicator(
          {
            id,
            chains: () => this.cluster?.chains ?? null,
            address: (node) => this.cluster?.info.addresses[node]?.[dialer.kind],
          },
          dialer,
          opts.adminToken ?? '',
        )
      : null;
    this.group = new GroupFrames(id, {
      table: (job, id) => this.table(job, id),
      chains: () => this.cluster?.chains ?? null,
      replicator: this.replicator,
    });
  }

  /** Serves every connection the listener accepts. */
  listen(listener: Listener): void {
    this.listeners.push(listener);
    listener.onconnection = (conn) => this.serve(conn);
  }

  serve(conn: Conn): void {
    this.conns.add(conn);
    // Every frame is applied or answered before onMessage returns; nothing keeps its bytes.
    conn.transientMessages = true;
    const raw = this.opts.rawHandler;
    if (raw) {
      const reply = (bytes: Uint8Array) => conn.send([bytes]);
      conn.onmessage = (msg) => {
        try {
          if (raw(msg, reply)) return;
        } catch (err) {
          this.errors++;
          conn.send(encodeError(0, toTabshardError(err)));
          return;
        }
        this.onMessage(conn, msg);
      };
    } else conn.onmessage = (msg) => this.onMessage(conn, msg);
    conn.onclose = () => {
      this.conns.delete(conn);
      this.keyCaches.drop(conn);
      this.subs.dropConn(conn);
    };
  }

  /** Defines a table; re-defining it identically is a no-op. */
  defineTable(spec: TableSpec): void {
    let tables = this.jobs.get(spec.job);
    if (!tables) {
      tables = new Map();
      this.jobs.set(spec.job, tables);
    }
    const have = tables.get(spec.id);
    if (have) {
      if (!sameTable(have.spec, spec)) throw new TabshardError('TS_ERR_TABLE_EXISTS', `${spec.name} (job ${spec.job})`);
      return;
    }
    tables.set(spec.id, new Table(spec));
  }

  /** Installs the cluster's ring and addresses (from the server manager), and its capability key if it names one. */
  setCluster(withKey: ClusterInfo): void {
    const { capabilityKey, ...info } = withKey;
    const verifier = this.access.verifierFor(capabilityKey); // checked before anything changes
    const prev = this.cluster?.chains ?? null;
    const ring = Ring.fromJSON(info.ring);
    const chains = new Chains(
      ring,
      info.next ? Ring.fromJSON(info.next) : null,
      info.replicas ?? 0,
      info.frozen === true,
    );
    this.cluster = { info, ring, chains };
    this.access.useKey(verifier);
    this.replicator?.ringInstalled(prev?.version === 0 ? null : prev, chains, this.allTables());
  }

  private *allTables(): Iterable<Table> {
    for (const ts of this.jobs.values()) yield* ts.values();
  }

  /**
   * Tells every other connection the ring just installed (PROTOCOL.md §6, RING push): an
   * unsolicited RING frame, request id 0, body `{"ring":…}`, so workers re-slice at once instead
   * of waiting for a connection to a removed node to time out.
   */
  private announceRing(from: Conn): void {
    const msg = encodeJson(MsgType.RING, 0, { ring: this.cluster!.info.ring });
    for (const c of this.conns) if (c !== from && !c.closed) c.send(msg.map((p) => p.slice()));
  }

  stats(): NodeStats {
    const tables: NodeStats['tables'] = [];
    for (const [job, ts] of this.jobs) for (const [id, t] of ts) tables.push({ job, id, ...t.stats() });
    return {
      node: this.id,
      connections: this.conns.size,
      frames: this.frames,
      errors: this.errors,
      publish: this.subs.stats(),
      tables,
      ...(this.opts.gc ? { gc: this.opts.gc() } : {}),
      ring: this.cluster?.ring.version ?? 0,
      replication: this.replicator ? { ...this.replicator.stats } : null,
      access: this.access.stats(),
      keySets: this.access.keySetStats(),
    };
  }

  async close(): Promise<void> {
    this.replicator?.close();
    for (const c of this.conns) c.close();
    await Promise.all(this.listeners.map((l) => l.close()));
  }

  private table(job: number, id: number): Table {
    const t = this.jobs.get(job)?.get(id);
    if (!t) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', `job ${job} table ${id}`);
    return t;
  }

  /**
   * The table of a read (PULL or SUBSCRIBE) of `keys`, after the read's checks in PROTOCOL.md §5
   * order but the last, the key space (Table.count, or Table.pull, which counts).
   */
  private readable(job: number, table: number, keys: KvKeys): Table {
    const t = this.table(job, table);
    const n = countKeys(keys);
    if (HEADER_BYTES + n * t.spec.valueLength * 4 > MAX_REPLY_BYTES)
      throw new TabshardError('TS_ERR_MESSAGE_TOO_LARGE', `${n} keys exceed the reply limit`);
    this.checkOwner(t, keys);
    return t;
  }

  /** Refuses keys this node does not own under the current ring (none installed: owns all). */
  private checkOwner(t: Table, keys: KvKeys): void {
    if (this.cluster) checkOwner(this.ownsAll, this.id, this.cluster.ring, t, keys);
  }

  /**
   * CLOCK: the job's slowest clock reached `clock`. Held tables apply their aggregates of the
   * iterations below it (PROTOCOL.md §6 TABLE `hold`) — on a master and on each replica alike,
   * each from its own copy of the held pushes (forwarded down the chain as they came); then
   * subscribers get fresh values (§5.1) and the manager its ACK.
   */
  private clock(conn: Conn, job: number, clock: number, requestId: number): void {
    for (const t of this.jobs.get(job)?.values() ?? []) t.release(clock);
    this.subs.publish(job, clock);
    conn.send(encodeAck(requestId));
  }

  private onMessage(conn: Conn, msg: Uint8Array): void {
    this.frames++;
    // The request id sits at bytes 4-7 of any frame long enough to have one.
    let requestId = msg.byteLength >= 8 ? new DataView(msg.buffer, msg.byteOffset, 8).getUint32(4, true) : 0;
    try {
      // Frames are consumed before this returns, so key lists can share one scratch array.
      const f = decodeFrame(msg, this.keyScratch);
      requestId = f.requestId;
      this.keyCaches.resolve(conn, f);
      this.dispatch(conn, f);
    } catch (err) {
      this.errors++;
      conn.send(encodeError(requestId, toTabshardError(err)));
    }
  }

  private dispatch(conn: Conn, f: Frame): void {
    switch (f.type) {
      case MsgType.PUSH: {
        const m = asPush(f);
        // Capabilities first (§6.2); the grant's keys once ownership is settled (NOT_OWNER first: workers re-slice on it).
        const grant = this.access.pushGrant(conn, m.job, m.table, m.task);
        const t = this.table(m.job, m.table);
        this.checkOwner(t, m.keys);
        if (this.cluster?.chains.held(t.spec, m.keys))
          throw new TabshardError(
            'TS_ERR_NOT_OWNER',
            `keys moving to another node (ring v${this.cluster.ring.version}); ask again`,
          );
        if (grant !== null) this.access.checkKeys(m.job, m.table, grant, m.keys);
        const applied = t.push(m.keys, m.values, m.task);
        const receipt =
          this.receipts !== null && m.task !== null && m.task.task !== 0
            ? this.receipts.seal({
                node: this.id,
                job: m.job,
                table: m.table,
                task: m.task.task,
                attempt: m.task.attempt,
                seq: m.task.seq,
                keys: countKeys(m.keys),
                duplicate: !applied,
              })
            : undefined;
        if (this.replicator === null) {
          conn.send(encodeAck(m.requestId, !applied, receipt));
          return;
        }
        const requestId = m.requestId;
        if (applied && t.holds(m.task)) {
          // A held push goes down the chain as it is; every member releases its own copy at CLOCK.
          this.replicator.forward(
            t,
            m.keys,
            m.task,
            'master',
            (err) => conn.send(err ? encodeError(requestId, err) : encodeAck(requestId, false, receipt)),
            t.lastHeld!,
          );
          return;
        }
        // Acknowledged once the chain holds the rows. A duplicate forwards the current rows
        // again: its first copy's forward may still be on its way when the resend arrives.
        const stamp = applied && (f.flags & Flag.RESLICED) === 0 ? m.task : null;
        this.replicator.forward(t, m.keys, stamp, 'master', (err) =>
          conn.send(err ? encodeError(requestId, err) : encodeAck(requestId, !applied, receipt)),
        );
        return;
      }
      case MsgType.FORWARD:
      case MsgType.MIGRATE:
        this.group.serve(conn, f);
        return;
      case MsgType.HEARTBEAT:
        // The server manager's liveness probe (docs/architecture.md §6).
        conn.send(encodeAck(f.requestId));
        return;
      case MsgType.PULL: {
        const m = asPull(f);
        this.access.checkRead(conn, m.job);
        const t = this.readable(m.job, m.table, m.keys);
        const { parts, release } = t.pull(m.keys, this.replyPool);
        conn.send(encodePullReply(m.requestId, parts, m), release);
        return;
      }
      case MsgType.SUBSCRIBE: {
        const m = asSubscribe(f);
        this.access.checkRead(conn, m.job);
        const t = this.readable(m.job, m.table, m.keys);
        const asks = { half: m.half, compress: m.compress, changed: m.changed };
        this.subs.subscribe(conn, m.subscription, m.job, t, m.keys, t.count(m.keys), asks);
        conn.send(encodeAck(m.requestId));
        this.subs.catchUp(conn, m.subscription); // after the ACK
        return;
      }
      case MsgType.UNSUBSCRIBE: {
        const m = asUnsubscribe(f);
        this.subs.unsubscribe(conn, m.subscription);
        conn.send(encodeAck(m.requestId));
        return;
      }
      case MsgType.CLOCK: {
        this.access.checkAdmin(conn);
        this.clock(conn, f.job, parseClock(f), f.requestId);
        return;
      }
      case MsgType.HELLO: {
        const hello = parseHello(decodeObject(f));
        if (hello.role === 'admin' || hello.role === 'server') {
          if (this.opts.adminToken && hello.token !== this.opts.adminToken)
            throw new TabshardError('TS_ERR_FORBIDDEN', 'wrong admin token');
          if (hello.role === 'admin') this.access.admitAdmin(conn);
          else {
            if (!hello.node) throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'a server says its node id');
            this.group.admit(conn, hello.node);
            this.access.admitServer(conn);
          }
        }
        conn.send(
          encodeJson(MsgType.HELLO, f.requestId, { node: this.id, protocol: 1, ring: this.cluster?.ring.version ?? 0 }),
        );
        return;
      }
      case MsgType.RING: {
        const o = decodeObject(f);
        if (o.ring !== undefined) {
          this.access.checkAdmin(conn);
          const before = this.cluster?.ring.version ?? -1;
          this.setCluster(parseClusterInfo({ ...o, tables: [] }));
          conn.send(encodeAck(f.requestId));
          if (this.cluster!.ring.version > before) this.announceRing(conn);
          return;
        }
        this.access.checkRingQuery(conn, f.job);
        if (!this.cluster) throw new TabshardError('TS_ERR_RING_EMPTY', 'this node has no ring yet');
        const tables = [...(this.jobs.get(f.job)?.values() ?? [])].map((t) => t.spec);
        conn.send(encodeJson(MsgType.RING, f.requestId, { ...this.cluster.info, tables }));
        return;
      }
      case MsgType.TABLE:
        this.access.checkAdmin(conn);
        this.defineTable(parseTableSpec(decodeObject(f)));
        conn.send(encodeAck(f.requestId));
        return;
      case MsgType.STATS: {
        this.access.checkStats(conn);
        const wait = this.access.isOperator(conn) ? parseSettled(f) : null;
        if (wait === null || this.replicator === null) {
          conn.send(encodeJson(MsgType.STATS, f.requestId, this.stats()));
          return;
        }
        // Answered once nothing of that kind is pending (or after `ms`): the manager's join and
        // drain learn at once that their copies or forwards are done, without polling.
        this.replicator.settled(wait.settled, wait.ms).then(() => {
          if (!conn.closed) conn.send(encodeJson(MsgType.STATS, f.requestId, this.stats()));
        });
        return;
      }
      case MsgType.CAP:
      case MsgType.KEYSET:
        this.access.serve(conn, f, (job, id) => this.table(job, id));
        return;
      case MsgType.FENCE: {
        this.access.checkAdmin(conn);
        const o = decodeObject(f);
        const [table, task, attempt] = [o.table, o.task, o.attempt].map((x) =>
          Number.isInteger(x) ? (x as number) : -1,
        );
        if (table < 0 || task < 1 || attempt < 0)
          throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'fence needs table, task, attempt');
        this.table(f.job, table).fence(task, attempt);
        conn.send(encodeAck(f.requestId));
        return;
      }
      case MsgType.CHECKPOINT:
      case MsgType.RESTORE: {
        // The body is checked (and a checkpoint's copy taken) now; the file I/O runs while the node serves.
        this.access.checkAdmin(conn);
        const { type, requestId } = f;
        const run = type === MsgType.CHECKPOINT ? checkpointJob : restoreJob;
        run(
          { self: this.id, job: f.job, tables: this.jobs.get(f.job), layout: () => this.cluster },
          decodeObject(f),
        ).then(
          (reply) => {
            if (!conn.closed) conn.send(encodeJson(type, requestId, reply));
          },
          (err) => {
            this.errors++;
            if (!conn.closed) conn.send(encodeError(requestId, toTabshardError(err)));
          },
        );
        return;
      }
      default:
        throw new TabshardError('TS_ERR_FRAME_TYPE', `type 0x${f.type.toString(16)} is not served by a server node`);
    }
  }
}
