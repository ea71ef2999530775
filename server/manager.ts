/**
 * The server manager (docs/architecture.md §1), embedded flavour: owns the server group's membership
 * and the ring (consistent hashing with virtual nodes), tells every node the cluster layout,
 * and defines tables on every node. It talks to nodes over the same protocol as workers.
 */
import type { ClusterInfo } from '../shared/cluster.ts';
import { TabshardError } from '../shared/errors.ts';
import { decodeObject, encodeJson } from '../shared/protocol/control.ts';
import { MsgType } from '../shared/protocol/frame.ts';
import { asPullReply, encodePull } from '../shared/protocol/kv.ts';
import { checkClock, encodeClock } from '../shared/protocol/subscribe.ts';
import { Ring } from '../shared/ring.ts';
import { RpcPeer } from '../shared/rpc.ts';
import { scatterPart, sliceByNode } from '../shared/slicing.ts';
import { parseTableSpec, type TableSpec } from '../shared/table.ts';
import type { Dialer } from '../shared/transport/types.ts';

export interface NodeEntry {
  id: string;
  /** Addresses by transport; `control` must be one of them (the manager dials it). */
  addresses: ClusterInfo['addresses'][string];
  control: string;
}

export class ServerManager {
  private readonly peers = new Map<string, RpcPeer>();
  private ring: Ring | null = null;
  private readonly tables: TableSpec[] = [];

  constructor(
    private readonly dialer: Dialer,
    private nodes: NodeEntry[],
    private readonly opts: { vnodes?: number; adminToken?: string } = {},
  ) {}

  get info(): ClusterInfo {
    if (!this.ring) throw new TabshardError('TS_ERR_RING_EMPTY', 'the manager has not started');
    return {
      ring: this.ring.toJSON(),
      addresses: Object.fromEntries(this.nodes.map((n) => [n.id, n.addresses])),
      tables: this.tables,
    };
  }

  /** Connects to every node and installs the ring. */
  async start(): Promise<void> {
    this.ring = new Ring(
      this.nodes.map((n) => n.id),
      { vnodes: this.opts.vnodes, version: 1 },
    );
    await Promise.all(this.nodes.map((n) => this.peer(n)));
    await this.broadcast((id) =>
      encodeJson(MsgType.RING, id, { ring: this.info.ring, addresses: this.info.addresses }),
    );
  }

  /**
   * Installs `ring` (e.g. the current one without a dead node, `ring.withNodes(…)`) on every node
   * of it, with the RING install frame `start` sends; nodes not in it are forgotten. Each node
   * announces the new ring to its other connections (PROTOCOL.md §6, RING push).
   */
  async installRing(ring: Ring): Promise<void> {
    const nodes = this.nodes.filter((n) => ring.nodes.includes(n.id));
    if (nodes.length !== ring.nodes.length)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'every node of the ring must be one the manager knows');
    for (const n of this.nodes)
      if (!ring.nodes.includes(n.id)) {
        this.peers.get(n.id)?.close();
        this.peers.delete(n.id);
      }
    this.nodes = nodes;
    this.ring = ring;
    await this.broadcast((id) =>
      encodeJson(MsgType.RING, id, { ring: this.info.ring, addresses: this.info.addresses }),
    );
  }

  /** Defines a table on every node (validated first; identical re-definition is a no-op). */
  async defineTable(spec: TableSpec): Promise<void> {
    const t = parseTableSpec(spec);
    await this.broadcast((id) => encodeJson(MsgType.TABLE, id, t));
    if (!this.tables.some((x) => x.job === t.job && x.id === t.id)) this.tables.push(t);
  }

  /** STATS of every node. */
  async stats(): Promise<unknown[]> {
    return Promise.all(
      this.nodes.map(async (n) =>
        decodeObject(await (await this.peer(n)).call((id) => encodeJson(MsgType.STATS, id, {}))),
      ),
    );
  }

  /** Fences a task on every node: pushes from attempts below `attempt` are refused. */
  async fence(job: number, table: number, task: number, attempt: number): Promise<void> {
    await this.broadcast((id) => encodeJson(MsgType.FENCE, id, { table, task, attempt }, job));
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
   * cluster's own reads (held-out evaluation, the task audit), not a worker's path.
   */
  async pull(job: number, table: number, keys: Float64Array | { begin: number; end: number }): Promise<Float32Array> {
    const spec = this.tables.find((t) => t.job === job && t.id === table);
    if (!spec || !this.ring) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', `job ${job} table ${table}`);
    const d = spec.valueLength;
    const n = keys instanceof Float64Array ? keys.length : keys.end - keys.begin;
    const out = new Float32Array(n * d);
    await Promise.all(
      sliceByNode(this.ring, spec, keys).map(async (part) => {
        const node = this.nodes.find((x) => x.id === part.owner)!;
        const reply = await (await this.peer(node)).call((id) =>
          encodePull({ requestId: id, job, table, clock: 0, keys: part.keys }),
        );
        const v = asPullReply(reply);
        if (v.length !== part.n * d) throw new TabshardError('TS_ERR_VALUE_LENGTH', `reply of ${v.length} values`);
        scatterPart(v, part, d, out);
      }),
    );
    return out;
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }

  private async peer(n: NodeEntry): Promise<RpcPeer> {
    let p = this.peers.get(n.id);
    if (!p || p.closed) {
      p = new RpcPeer(await this.dialer.dial(n.control));
      this.peers.set(n.id, p);
      await p.call((id) => encodeJson(MsgType.HELLO, id, { role: 'admin', token: this.opts.adminToken ?? '' }));
    }
    return p;
  }

  private async broadcast(build: (id: number) => Uint8Array[]): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => (await this.peer(n)).call(build)));
  }
}
