/**
 * The server manager (docs/architecture.md §1, §6), embedded flavour: owns the server group's
 * membership and the ring (consistent hashing with virtual nodes), tells every node the cluster
 * layout, defines tables on every node, and watches the nodes: each is probed with a HEARTBEAT
 * every `heartbeatMs`; a node whose connection is lost and cannot be redialled, or that has not
 * answered for `deadAfterMs`, is declared dead, and a ring without it (version + 1) is installed
 * on every live node. Its ranges then belong to their first replicas, which already hold them
 * (chain replication); each new master copies its ranges to the chain members that lack them.
 * It talks to nodes over the same protocol as workers.
 */
import type { ClusterInfo } from '../shared/cluster.ts';
import { TabshardError, toTabshardError, unanswered } from '../shared/errors.ts';
import { decodeObject, encodeJson } from '../shared/protocol/control.ts';
import { MsgType } from '../shared/protocol/frame.ts';
import { asPullReply, encodePull } from '../shared/protocol/kv.ts';
import { checkClock, encodeClock } from '../shared/protocol/subscribe.ts';
import { Ring } from '../shared/ring.ts';
import { RpcPeer } from '../shared/rpc.ts';
import { scatterPart, sliceByNode } from '../shared/slicing.ts';
import type { NodeState, NodeView } from '../shared/status.ts';
import { parseTableSpec, type TableSpec } from '../shared/table.ts';
import type { Dialer } from '../shared/transport/types.ts';
import { DEAD_AFTER_MS, Liveness, type ManagerEvent, type Member, type NodeEntry } from './liveness.ts';
import { ManagerKeySets } from './manager-keysets.ts';

export type { ManagerEvent, NodeEntry, NodeState, NodeView };

export interface ManagerOptions {
  vnodes?: number;
  /** The ring's small-table bound (floats; default 65 536): tables up to it live whole on one node. */
  smallTableValues?: number;
  adminToken?: string;
  /**
   * The public key (Ed25519 SPKI DER, base64: CapabilitySigner.publicKey()) the nodes check
   * capabilities with, sent in every RING install (PROTOCOL.md §6.2).
   */
  capabilityKey?: string;
  /** Replicas per key range (k). Default 1 with two or more nodes, else 0. */
  replicas?: number;
  /**
   * Probe period (default 200 ms) and the silence after which a hung node is dead (default
   * 5000 ms). A node whose connection closes and that refuses a new one is dead at once.
   */
  heartbeatMs?: number;
  deadAfterMs?: number;
  onevent?: (e: ManagerEvent) => void;
  /** The first ring's version (default 1): above every version a cluster on the same data directory used. */
  firstRingVersion?: number;
  /** Called with each ring version before it is sent to any node (the data directory keeps the highest). */
  onring?: (version: number) => void;
}

export class ServerManager {
  private readonly peers = new Map<string, RpcPeer>();
  private readonly members = new Map<string, Member>();
  private ring: Ring | null = null;
  /** The ring a join or drain is copying to, while it does. */
  private next: Ring | null = null;
  private readonly tables: TableSpec[] = [];
  /** Key sets defined on every node (KEYSET), sent again to a node that joins. */
  private readonly keySets = new ManagerKeySets();
  private readonly liveness: Liveness;
  private ringWaiters: Array<() => void> = [];
  /** Ring installs in flight, in order (one at a time: versions reach nodes in order). */
  private installing: Promise<unknown> = Promise.resolve();
  readonly replicas: number;

  constructor(
    private readonly dialer: Dialer,
    nodes: NodeEntry[],
    private readonly opts: ManagerOptions = {},
  ) {
    for (const n of nodes) this.members.set(n.id, { entry: n, state: 'up', lastSeen: 0, probing: false });
    this.replicas = Math.min(opts.replicas ?? (nodes.length > 1 ? 1 : 0), Math.max(0, nodes.length - 1));
    this.liveness = new Liveness(
      {
        members: () => this.members.values(),
        heartbeat: (node) => this.peer(node).then((p) => p.call((id) => encodeJson(MsgType.HEARTBEAT, id, {}))),
        dead: (node, reason) => this.declareQuietly(node, reason),
        event: (e) => this.opts.onevent?.(e),
      },
      { heartbeatMs: opts.heartbeatMs, deadAfterMs: opts.deadAfterMs },
    );
  }

  get info(): ClusterInfo {
    if (!this.ring) throw new TabshardError('TS_ERR_RING_EMPTY', 'the manager has not started');
    return {
      ring: this.ring.toJSON(),
      addresses: Object.fromEntries(this.ring.nodes.map((id) => [id, this.members.get(id)!.entry.addresses])),
      tables: this.tables,
      replicas: this.replicas,
    };
  }

  /** Connects to every node, installs the ring, and starts watching the nodes. */
  async start(): Promise<void> {
    const live = [...this.members.keys()];
    const ring = new Ring(live, {
      vnodes: this.opts.vnodes,
      smallTableValues: this.opts.smallTableValues,
      version: this.opts.firstRingVersion ?? 1,
    });
    await Promise.all(live.map((id) => this.peer(id)));
    await this.install(ring);
    this.liveness.start();
  }

  /** Every node the manager knows and its state, with its share of the ring. */
  nodeStates(): NodeView[] {
    const counts = new Map<string, { masters: number; replicas: number; share: number }>();
    const ring = this.ring;
    // Key share: the mean over the tables spread over the ring (not the small ones, each whole on one node).
    const large = ring ? this.tables.filter((t) => t.keySpace * t.valueLength > ring.smallTableValues).length : 0;
    if (ring)
      for (const t of this.tables) {
        const isLarge = t.keySpace * t.valueLength > ring.smallTableValues;
        for (const r of ring.chainRanges(t, this.replicas).ranges)
          r.chain.forEach((node, i) => {
            const c = counts.get(node) ?? { masters: 0, replicas: 0, share: 0 };
            if (i === 0) c.masters++;
            else c.replicas++;
            if (i === 0 && isLarge) c.share += (r.end - r.begin) / t.keySpace / large;
            counts.set(node, c);
          });
      }
    return [...this.members.values()].map((m) => ({
      id: m.entry.id,
      state: m.state,
      masters: counts.get(m.entry.id)?.masters ?? 0,
      replicas: counts.get(m.entry.id)?.replicas ?? 0,
      keyShare: large ? (counts.get(m.entry.id)?.share ?? 0) : null,
    }));
  }

  /**
   * Installs `ring` (e.g. the current one without a node, `ring.withNodes(…)`) on every node of
   * it; nodes it leaves out count as dead from now on. Each node announces the new ring to its
   * other connections (PROTOCOL.md §6, RING push).
   */
  async installRing(ring: Ring): Promise<void> {
    if (!ring.nodes.every((n) => this.members.has(n)))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'every node of the ring must be one the manager knows');
    for (const [id, m] of this.members)
      if (!ring.nodes.includes(id)) {
        m.state = 'dead';
        this.peers.get(id)?.close();
        this.peers.delete(id);
      }
    await this.install(ring);
  }

  /**
   * Adds a node while jobs run (docs/architecture.md §6): it gets every table, then a ring is
   * installed whose chains also name it where the ring with it would (each master copies it the
   * ranges it will hold, and forwards it every push from then on); once every copy is
   * acknowledged the ring with it is installed, and the nodes drop what they gave away. Resolves
   * when the node masters its share. A node that holds data already (one that was declared dead
   * and came back) must be restarted first.
   */
  async join(entry: NodeEntry): Promise<void> {
    if (!this.ring) throw new TabshardError('TS_ERR_RING_EMPTY', 'the manager has not started');
    const had = this.members.get(entry.id);
    if (had && had.state !== 'dead')
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `node ${entry.id} is already a member (${had.state})`);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(entry.id)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'node id');
    const m: Member = { entry, state: 'joining', lastSeen: performance.now(), probing: false };
    this.members.set(entry.id, m);
    try {
      const peer = await this.peer(entry.id);
      const s = await this.nodeStats(entry.id);
      if (Array.isArray(s.tables) && s.tables.some((t) => (t as { keys?: number }).keys))
        throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `node ${entry.id} holds data already: restart it to join`);
      for (const t of this.tables) await peer.call((id) => encodeJson(MsgType.TABLE, id, t));
      await this.keySets.sendTo(peer);
      // The ring as it is, naming no range the node holds (as a drained node has it): it works
      // out the current layouts now, so the copy phase's install has only the next ring to add.
      await peer.call(this.ringInstall(this.ring));
      const t0 = performance.now();
      const steps = await this.transition(this.ringWith([...this.ring.nodes, entry.id]));
      m.state = 'up';
      const ms = Math.round(performance.now() - t0);
      this.opts.onevent?.({ type: 'node-joined', node: entry.id, ring: this.ring.version, ms, ...steps });
    } catch (err) {
      if (m.state === 'joining') {
        this.members.delete(entry.id);
        this.peers.get(entry.id)?.close();
        this.peers.delete(entry.id);
      }
      throw err;
    }
  }

  /**
   * Drains a node while jobs run: its ranges are copied to the nodes that take them over (as in
   * `join`), the ring without it is installed, and it is forgotten. Its process keeps running,
   * owning nothing, until it is stopped.
   */
  async drain(node: string): Promise<void> {
    const m = this.members.get(node);
    if (!this.ring || !m || m.state !== 'up' || !this.ring.nodes.includes(node))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `node ${node} is not a live member`);
    if (this.ring.nodes.length < 2) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'the last node cannot leave');
    m.state = 'draining';
    const t0 = performance.now();
    let steps: { copyMs: number; frozenMs: number };
    try {
      steps = await this.transition(this.ringWith(this.ring.nodes.filter((n) => n !== node)));
    } catch (err) {
      if (m.state === 'draining') m.state = 'up';
      throw err;
    }
    const ms = Math.round(performance.now() - t0);
    this.opts.onevent?.({ type: 'node-drained', node, ring: this.ring.version, ms, ...steps });
    this.members.delete(node);
    this.peers.get(node)?.close();
    this.peers.delete(node);
  }

  /** The current ring's options with these nodes, three versions on (the copying and frozen rings come between). */
  private ringWith(nodes: string[]): Ring {
    const r = this.ring!;
    return new Ring(nodes, { vnodes: r.vnodes, smallTableValues: r.smallTableValues, version: r.version + 3 });
  }

  /**
   * Moves the cluster to `final` in three installs (versions final − 2, − 1, final): the copying
   * ring (the current one, with `next`: chains are the union of both, so members `final` adds get
   * copies and every later forward), once every copy is acknowledged the frozen ring (masters hold
   * new pushes for keys whose master changes, the workers ask again), once no forward is left
   * unfinished the final ring; nodes then drop what they gave away.
   */
  private async transition(final: Ring): Promise<{ copyMs: number; frozenMs: number }> {
    const cur = this.ring!;
    if (this.next) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'a join or drain is already under way');
    const step = (version: number) =>
      new Ring(cur.nodes, { vnodes: cur.vnodes, smallTableValues: cur.smallTableValues, version });
    const copying = step(final.version - 2);
    const frozen = step(final.version - 1);
    const nodes = [...new Set([...final.nodes, ...cur.nodes])];
    const t0 = performance.now();
    await this.install(copying, final);
    await this.until(copying, nodes, 'copies');
    const t1 = performance.now();
    await this.install(frozen, final, [], true);
    await this.until(frozen, nodes, 'forwards');
    // A drained node gets the last ring too: it then owns nothing, so it serves no stale reads.
    await this.install(final, undefined, cur.nodes);
    const t2 = performance.now();
    return { copyMs: Math.round(t1 - t0), frozenMs: Math.round(t2 - t1) };
  }

  /** A RING install frame of `ring` (with `next` while a join or drain copies). */
  private ringInstall(ring: Ring, next?: Ring, frozen = false): (requestId: number) => Uint8Array[] {
    const body = {
      ring: ring.toJSON(),
      ...(next ? { next: next.toJSON(), ...(frozen ? { frozen: true } : {}) } : {}),
      addresses: Object.fromEntries(
        [...new Set([...ring.nodes, ...(next?.nodes ?? [])])].map((n) => [n, this.members.get(n)!.entry.addresses]),
      ),
      replicas: this.replicas,
      ...(this.opts.capabilityKey ? { capabilityKey: this.opts.capabilityKey } : {}),
    };
    return (id) => encodeJson(MsgType.RING, id, body);
  }

  /**
   * Waits until every live node of `nodes` has `ring` installed and nothing of `what` pending:
   * each node answers a STATS `settled` request once it has none (or after a second, and is
   * asked again), so the join or drain goes on the moment the last copy or forward is done.
   */
  private async until(ring: Ring, nodes: string[], what: 'copies' | 'forwards'): Promise<void> {
    const deadline = performance.now() + 300_000;
    const field = what === 'copies' ? 'copiesPending' : 'forwardsPending';
    for (;;) {
      if (this.ring !== ring) throw new TabshardError('TS_ERR_INTERNAL', 'a failover interrupted the join or drain');
      const all = await Promise.all(
        nodes
          .filter((n) => this.members.get(n)?.state !== 'dead')
          .map((n) => this.nodeStats(n, { settled: what, ms: 1000 })),
      );
      const done = (s: Record<string, unknown>) => {
        const r = s.replication as Record<string, number> | null;
        return (s.ring as number) >= ring.version && r !== null && r[field] === 0;
      };
      if (all.every(done)) return;
      if (performance.now() > deadline) throw new TabshardError('TS_ERR_TIMEOUT', `${what} did not finish in 300 s`);
      // A node that answers at once without waiting (its ring not installed yet, or no
      // replication): asked again shortly, not in a tight loop.
      if (all.some((s) => (s.ring as number) < ring.version || s.replication === null))
        await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Defines a table on every node (validated first; identical re-definition is a no-op). */
  async defineTable(spec: TableSpec): Promise<void> {
    const t = parseTableSpec(spec);
    await this.broadcast((id) => encodeJson(MsgType.TABLE, id, t));
    if (!this.tables.some((x) => x.job === t.job && x.id === t.id)) this.tables.push(t);
  }

  /**
   * Installs key set `id` of a table on every node (KEYSET, PROTOCOL.md §6.2; a set of the same
   * (job, table, id) is replaced): task capabilities may name it as the keys a task pushes. The
   * manager remembers it for nodes that join later.
   */
  async defineKeySet(job: number, table: number, id: number, keys: Float64Array): Promise<void> {
    if (!this.tables.some((t) => t.job === job && t.id === table))
      throw new TabshardError('TS_ERR_UNKNOWN_TABLE', `job ${job} table ${table}`);
    await this.broadcast(this.keySets.define(job, table, id, keys));
  }

  /** One node's STATS reply (PROTOCOL.md §6). */
  private async nodeStats(node: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return decodeObject(await (await this.peer(node)).call((id) => encodeJson(MsgType.STATS, id, body)));
  }

  /** STATS of every node: a dead or silent node's entry is `{ node, state, error }`. */
  async stats(): Promise<unknown[]> {
    return Promise.all(
      [...this.members.values()].map(async (m) => {
        const node = m.entry.id;
        if (m.state === 'dead') return { node, state: m.state, error: 'declared dead' };
        try {
          const s = await this.nodeStats(node);
          return { ...s, state: m.state };
        } catch (err) {
          return { node, state: m.state, error: toTabshardError(err).message };
        }
      }),
    );
  }

  /** Fences a task on every live node: pushes from attempts below `attempt` are refused. */
  async fence(job: number, table: number, task: number, attempt: number): Promise<void> {
    await this.broadcast((id) => encodeJson(MsgType.FENCE, id, { table, task, attempt }, job));
  }

  /**
   * Sends `build(node)` to every node of the ring and returns each node's JSON reply, for calls
   * that must reach every node under one layout (a checkpoint, a restore): fails at once when
   * any node fails, when a join or drain is under way, or when the ring changed meanwhile.
   */
  async callRing(
    build: (node: string, id: number) => Uint8Array[],
    /**
     * Called once every node has handled the request's frame (its HEARTBEAT sent right after on
     * the same connection is answered; a node handles one connection's frames in order), which
     * can be long before its reply: a checkpoint's copy is taken then, its file written later.
     */
    handled?: () => void,
  ): Promise<{ ring: number; replies: Map<string, Record<string, unknown>> }> {
    const ring = this.ring;
    if (!ring) throw new TabshardError('TS_ERR_RING_EMPTY', 'the manager has not started');
    if (this.next) throw new TabshardError('TS_ERR_NOT_OWNER', 'a node is joining or draining; try again after');
    const replies = new Map<string, Record<string, unknown>>();
    const peers = await Promise.all(ring.nodes.map((n) => this.peer(n)));
    const calls = ring.nodes.map(async (n, i) => {
      replies.set(n, decodeObject(await peers[i].call((id) => build(n, id))));
    });
    const probes = peers.map((p) => p.call((id) => encodeJson(MsgType.HEARTBEAT, id, {})));
    if (handled) void Promise.all(probes).then(handled, () => {});
    await Promise.all([...calls, ...probes]);
    if (this.ring !== ring || this.next)
      throw new TabshardError('TS_ERR_NOT_OWNER', `the ring changed (v${ring.version} → v${this.ring?.version})`);
    return { ring: ring.version, replies };
  }

  /**
   * Eager SSP: tells every node that the slowest clock of `job` reached `clock` (an integer in
   * [0, 2^31−1]); each publishes the current values of every subscription of the job's tables to
   * its subscriber. Resolves once every node has queued its publications.
   */
  async publish(job: number, clock: number): Promise<void> {
    checkClock(clock);
    await this.broadcast((id) => encodeClock(id, job, clock));
  }

  /**
   * Reads the values of `keys` (a sorted key list or a range) of a table from their owners: the
   * cluster's own reads (held-out evaluation, the task audit), not a worker's path. A read that
   * meets a failover is made again under the next ring.
   */
  async pull(
    job: number,
    table: number,
    keys: Float64Array | { begin: number; end: number },
    tries = 0,
  ): Promise<Float32Array> {
    const spec = this.tables.find((t) => t.job === job && t.id === table);
    if (!spec || !this.ring) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', `job ${job} table ${table}`);
    const d = spec.valueLength;
    const n = keys instanceof Float64Array ? keys.length : keys.end - keys.begin;
    const out = new Float32Array(n * d);
    const ring = this.ring;
    try {
      await Promise.all(
        sliceByNode(ring, spec, keys).map(async (part) => {
          const reply = await (await this.peer(part.owner)).call((id) =>
            encodePull({ requestId: id, job, table, clock: 0, keys: part.keys }),
          );
          const v = asPullReply(reply);
          if (v.length !== part.n * d) throw new TabshardError('TS_ERR_VALUE_LENGTH', `reply of ${v.length} values`);
          scatterPart(v, part, d, out);
        }),
      );
    } catch (err) {
      if (tries >= 3 || !(await this.ringAfter(ring.version, 2 * (this.opts.deadAfterMs ?? DEAD_AFTER_MS)))) throw err;
      return this.pull(job, table, keys, tries + 1);
    }
    return out;
  }

  close(): void {
    this.liveness.stop();
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const w of this.ringWaiters.splice(0)) w();
  }

  /** Declares `node` dead and installs the ring without it (a no-op for a node already gone). */
  async declareDead(node: string, reason: string): Promise<void> {
    const m = this.members.get(node);
    if (!m || m.state === 'dead' || !this.ring) return;
    const t0 = performance.now();
    m.state = 'dead';
    this.peers.get(node)?.close();
    this.peers.delete(node);
    // Computed when its turn in the install queue comes: another change may be ahead of it.
    const next = await this.install((cur) => {
      // (A node the ring no longer holds, say one that failed while joining: nothing to install.)
      const live = cur.nodes.filter((id) => id !== node);
      return live.length === 0 || live.length === cur.nodes.length ? null : { ring: cur.withNodes(live) };
    });
    if (next === null) return;
    this.opts.onevent?.({
      type: 'node-dead',
      node,
      reason,
      ring: next.version,
      ms: Math.round(performance.now() - t0),
    });
  }

  /**
   * Installs `ring` on its nodes (a node that dies meanwhile is left out), then adopts it. With
   * `next` (a join or drain copying), the nodes follow the union of both rings' chains; the
   * nodes `next` names receive it too.
   */
  private install(
    what: Ring | ((cur: Ring) => { ring: Ring; next?: Ring; also?: readonly string[] } | null),
    nextRing?: Ring,
    alsoNodes: readonly string[] = [],
    frozen = false,
  ): Promise<Ring | null> {
    const run = this.installing.then(async () => {
      const plan = typeof what === 'function' ? what(this.ring!) : { ring: what, next: nextRing, also: alsoNodes };
      if (plan === null) return null;
      const { ring, next } = plan;
      const also = plan.also ?? [];
      // Versions only rise: a join's last step after a failover took over would be stale.
      if (this.ring && ring.version <= this.ring.version)
        throw new TabshardError('TS_ERR_INTERNAL', `ring v${ring.version} is not newer than v${this.ring.version}`);
      this.opts.onring?.(ring.version);
      const targets = [...new Set([...ring.nodes, ...(next?.nodes ?? []), ...also])];
      const body = this.ringInstall(ring, next, frozen);
      await Promise.all(
        targets.map(async (n) => {
          try {
            await (await this.peer(n)).call(body);
          } catch (err) {
            if (this.members.get(n)?.state !== 'dead' && this.ring !== null) throw err;
          }
        }),
      );
      this.ring = ring;
      this.next = next ?? null;
      for (const w of this.ringWaiters.splice(0)) w();
      return ring;
    });
    this.installing = run.catch(() => {});
    return run;
  }

  /** Resolves true once the adopted ring is newer than `version`, false after `ms`. */
  private ringAfter(version: number, ms: number): Promise<boolean> {
    if (this.ring && this.ring.version > version) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.ringWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.ring !== null && this.ring.version > version);
      });
    });
  }

  /** declareDead from a timer: a failed install (a live node refused the ring) is reported, never thrown. */
  private declareQuietly(node: string, reason: string): void {
    this.declareDead(node, reason).catch((err) =>
      this.opts.onevent?.({
        type: 'node-dead',
        node,
        reason: `${reason}; ring install failed: ${toTabshardError(err).message}`,
        ring: this.ring?.version ?? 0,
        ms: 0,
      }),
    );
  }

  private async peer(node: string): Promise<RpcPeer> {
    let p = this.peers.get(node);
    if (!p || p.closed) {
      const m = this.members.get(node);
      if (!m || m.state === 'dead')
        throw new TabshardError('TS_ERR_CONNECT_FAILED', `node ${node} is not a live member`);
      p = new RpcPeer(await this.dialer.dial(m.entry.control), Math.max(this.opts.deadAfterMs ?? DEAD_AFTER_MS, 5000));
      this.peers.set(node, p);
      const peer = p;
      // A lost control connection is probed at once rather than at the next tick.
      peer.conn.onclose = ((prev) => (err) => {
        prev?.(err);
        if (this.peers.get(node) === peer) this.peers.delete(node);
        this.liveness.probe(m);
      })(peer.conn.onclose);
      await p.call((id) => encodeJson(MsgType.HELLO, id, { role: 'admin', token: this.opts.adminToken ?? '' }));
    }
    return p;
  }

  /**
   * Sends a request to every live node of the ring. A node that fails is waited for: the call
   * succeeds once that node is declared dead (the ring no longer holds it), and fails if the node
   * is still a member afterwards. Never waits forever on a dead node.
   */
  private async broadcast(build: (id: number) => Uint8Array[]): Promise<void> {
    const nodes = this.ring
      ? [...new Set([...this.ring.nodes, ...(this.next?.nodes ?? [])])]
      : [...this.members.keys()];
    await Promise.all(
      nodes.map(async (n) => {
        try {
          await (await this.peer(n)).call(build);
        } catch (err) {
          // A node that answered with a coded refusal is alive: its answer stands. Only a node
          // that could not be reached is waited for, until it is declared dead (then skipped).
          if (!unreachable(err)) throw err;
          const deadline = performance.now() + 2 * (this.opts.deadAfterMs ?? DEAD_AFTER_MS);
          while (this.members.get(n)?.state !== 'dead' && performance.now() < deadline && this.liveness.running) {
            const v = this.ring?.version ?? 0;
            await this.ringAfter(v, deadline - performance.now());
          }
          if (this.members.get(n)?.state !== 'dead') throw err;
        }
      }),
    );
  }
}

/** The request never got an answer (a dial that failed outside our codes counts too). */
function unreachable(err: unknown): boolean {
  return !(err instanceof TabshardError) || unanswered(err);
}
