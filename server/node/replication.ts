/**
 * Chain replication after aggregation (docs/architecture.md §6), the sending side of a node.
 * A master that applied a push forwards the resulting rows (values and updater state) of those
 * keys, with the push's task stamp, to the next member of each key's chain; a replica writes them
 * and forwards to the member after it; the worker is acknowledged once the whole chain has them.
 * A replica never runs an updater. When a new ring is installed, the master of each range copies
 * it (rows and at-most-once records) to every chain member that did not hold it before, which
 * restores the replication factor after a failure.
 *
 * Links to other nodes are ordinary connections opened with HELLO {role:"server"}; one link per
 * peer keeps FORWARDs and MIGRATEs to it in order.
 */
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { encodeJson } from '../../shared/protocol/control.ts';
import { MsgType, type TaskStamp } from '../../shared/protocol/frame.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import {
  encodeForward,
  encodeMigrateClear,
  encodeMigrateRecords,
  encodeMigrateRows,
} from '../../shared/protocol/replication.ts';
import type { TableShape } from '../../shared/ring.ts';
import { type ReplyFn, RpcPeer } from '../../shared/rpc.ts';
import type { Dialer } from '../../shared/transport/types.ts';
import { type Chains, copiesOwed, groupByNext, inAll, mastersAll, piecesGivenAway } from './chain.ts';
import { gatherChunks } from './copy-chunks.ts';
import { type Settled, Settling } from './settled.ts';
import type { Table } from './table.ts';

/** Errors after which a forward is tried again once the ring has changed. */
const RETRY_ON_NEW_RING = new Set([
  'TS_ERR_TRANSPORT_CLOSED',
  'TS_ERR_CONNECT_FAILED',
  'TS_ERR_TIMEOUT',
  'TS_ERR_NOT_OWNER',
]);
/** Longest pause between tries of a failed forward (250 ms, doubling); about 10 s in all before the push fails. */
const RING_WAIT_MS = 4000;
const MAX_TRIES = 7;

/** What the replicator needs of its node. */
export interface ReplicaHost {
  readonly id: string;
  /** The chains of the installed cluster layout (null before the manager's first ring). */
  chains(): Chains | null;
  /** Where to reach `node` with this replicator's dialer. */
  address(node: string): string | undefined;
}

export interface ReplicationStats {
  /** FORWARD frames sent and their bytes (rows). */
  forwards: number;
  forwardBytes: number;
  /** MIGRATE frames sent to copy ranges, their payload (keys and rows), and how many are not acknowledged yet. */
  copies: number;
  copyBytes: number;
  copiesPending: number;
  /** Pushes whose forwards are not finished yet (sent, or waiting to be tried again). */
  forwardsPending: number;
  /** Forwards that failed and were tried again under a newer ring. */
  retries: number;
}

/** A held push's values for a subset of its keys (the FORWARD of a held push, Flag.HELD). */
export type HeldValues = (sub: KvKeys) => Float32Array;

export class Replicator {
  readonly stats: ReplicationStats = {
    forwardsPending: 0,
    forwards: 0,
    forwardBytes: 0,
    copies: 0,
    copyBytes: 0,
    copiesPending: 0,
    retries: 0,
  };
  private readonly links = new Map<string, Promise<RpcPeer>>();
  private readonly ready = new Map<string, RpcPeer>();
  private waiters: Array<{ after: number; resolve: (changed: boolean) => void; timer: ReturnType<typeof setTimeout> }> =
    [];
  private readonly settling = new Settling((what) =>
    what === 'copies' ? this.stats.copiesPending : this.stats.forwardsPending,
  );

  constructor(
    private readonly host: ReplicaHost,
    private readonly dialer: Dialer,
    private readonly token: string,
  ) {}

  /**
   * Sends the current rows of `keys` of `t` to the next chain member of each key; `done` runs once,
   * when every one acknowledged (null) or the forward failed for good. `role` master: the node must
   * still head every key's chain (it is checked again on a retry under a newer ring).
   */
  forward(
    t: Table,
    keys: KvKeys,
    stamp: TaskStamp | null,
    role: 'master' | 'replica',
    done: (err: TabshardError | null) => void,
    held?: HeldValues,
  ): void {
    const ring = this.host.chains();
    if (ring === null || ring.k === 0 || ring.nodes.length < 2) {
      done(null);
      return;
    }
    this.stats.forwardsPending++;
    this.attempt(
      t,
      keys,
      stamp,
      role,
      (err) => {
        this.stats.forwardsPending--;
        this.settling.wake();
        done(err);
      },
      0,
      held,
    );
  }

  private attempt(
    t: Table,
    keys: KvKeys,
    stamp: TaskStamp | null,
    role: 'master' | 'replica',
    done: (err: TabshardError | null) => void,
    tries: number,
    held?: HeldValues,
  ): void {
    const ring = this.host.chains();
    if (ring === null || ring.k === 0 || ring.nodes.length < 2) {
      done(null);
      return;
    }
    const layout = ring.of(shapeOf(t));
    // Under a newer ring this node may no longer hold the keys: the node before it must forward
    // them along the new chains itself (a replica answering "done" would skip the members the
    // new ring added).
    if (tries > 0 && role === 'replica' && !inAll(layout, this.host.id, keys)) {
      done(
        new TabshardError(
          'TS_ERR_NOT_OWNER',
          `${this.host.id} no longer replicates these keys (ring v${ring.version})`,
        ),
      );
      return;
    }
    if (role === 'master' && tries > 0 && !mastersAll(layout, this.host.id, keys)) {
      done(
        new TabshardError('TS_ERR_NOT_OWNER', `${this.host.id} no longer masters these keys (ring v${ring.version})`),
      );
      return;
    }
    const groups = groupByNext(layout, this.host.id, keys);
    if (groups.size === 0) {
      done(null);
      return;
    }
    let left = groups.size;
    let failed: TabshardError | null = null;
    // The groups' keys are copies (the request's may live in a scratch array): a retry sends them.
    const retry: KvKeys[] = [];
    const steps = t.steps;
    for (const [node, sub] of groups) {
      const rows = held ? held(sub) : t.rows(sub);
      this.stats.forwards++;
      this.stats.forwardBytes += rows.byteLength;
      const msg = {
        requestId: 0,
        job: t.spec.job,
        table: t.spec.id,
        steps,
        task: stamp,
        keys: sub,
        rows,
        held: !!held,
      };
      this.send(
        node,
        (requestId) => encodeForward({ ...msg, requestId }),
        (err) => {
          if (err) {
            failed ??= err;
            retry.push(sub);
          }
          if (--left > 0) return;
          if (failed === null) return done(null);
          if (!RETRY_ON_NEW_RING.has(failed.code) || tries + 1 >= MAX_TRIES) return done(failed);
          // A lost link to a live node is redialled at once; otherwise a chain member is gone (or
          // thinks this node is): forward again once the manager's next ring is here (or after a
          // growing pause), to that ring's chains — the rows then are at least as new as this push.
          const wait =
            tries === 0 && failed.code === 'TS_ERR_TRANSPORT_CLOSED' ? 0 : Math.min(RING_WAIT_MS, 250 << tries);
          this.stats.retries++;
          const again = () => {
            let pending = retry.length;
            let first: TabshardError | null = null;
            for (const keys of retry)
              this.attempt(
                t,
                keys,
                stamp,
                role,
                (e) => {
                  first ??= e;
                  if (--pending === 0) done(first);
                },
                tries + 1,
                held,
              );
          };
          if (wait === 0) again();
          else this.ringAfter(ring.version, wait).then(again);
        },
      );
    }
  }

  /**
   * A new ring was installed: copy every range this node masters to the chain members that did
   * not hold it under `prev` — clear the range there, write its rows, merge the table's records.
   */
  ringInstalled(prev: Chains | null, next: Chains, tables: Iterable<Table>): void {
    for (const w of this.waiters.splice(0)) {
      if (next.version > w.after) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else this.waiters.push(w);
    }
    const members = next.nodes;
    for (const [node, link] of this.ready)
      if (!members.includes(node)) {
        link.close();
        this.drop(node);
      }
    const all = [...tables];
    // Each table's chain layout now, not at its first request: a joining node gets its first
    // ring here and its first MIGRATE moments later, from masters that work out theirs meanwhile.
    for (const t of all) next.of(shapeOf(t));
    if (prev === null || next.k === 0) return;
    for (const t of all) {
      const shape = shapeOf(t);
      const before = prev.of(shape);
      const after = next.of(shape);
      const owed = copiesOwed(before, after, this.host.id);
      for (const [node, pieces] of owed) this.copy(t, node, pieces, next, 0);
      // What this node no longer holds under the new chains (a joined node took it, a drain or
      // failover moved it elsewhere): nobody reads it here again.
      t.dropRanges(piecesGivenAway(before, after, this.host.id));
    }
  }

  /** Resolves true once a ring newer than `after` is installed, false after `ms`. */
  ringAfter(after: number, ms: number): Promise<boolean> {
    const ring = this.host.chains();
    if (ring !== null && ring.version > after) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        after,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(false);
        }, ms),
      };
      w.timer.unref?.();
      this.waiters.push(w);
    });
  }

  /**
   * Resolves once no copy (`copies`) or no forward (`forwards`) is pending, or after `ms`
   * (STATS `settled`, PROTOCOL.md §6).
   */
  settled(what: Settled, ms: number): Promise<void> {
    return this.settling.wait(what, ms);
  }

  close(): void {
    this.settling.close();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    for (const p of this.links.values())
      p.then(
        (x) => x.close(),
        () => {},
      );
    this.links.clear();
    this.ready.clear();
  }

  private copy(t: Table, node: string, pieces: Array<[number, number]>, ring: Chains, tries: number): void {
    const { job, id } = t.spec;
    let failed: TabshardError | null = null;
    let left = 0;
    const sent: ReplyFn = (err) => {
      this.stats.copiesPending--;
      if (err) failed ??= err;
      if (--left > 0 || failed === null) {
        this.settling.wake();
        return;
      }
      // Tried again while `node` is still in the installed ring (a lost link is redialled).
      const now = this.host.chains();
      if (now === ring && now.nodes.includes(node) && tries + 1 < MAX_TRIES) {
        this.stats.copiesPending++; // still owed while the retry waits
        setTimeout(() => {
          this.stats.copiesPending--;
          if (this.host.chains() === ring) this.copy(t, node, pieces, ring, tries + 1);
          this.settling.wake();
        }, 100 << tries).unref?.();
      }
      this.settling.wake();
    };
    const queue = (build: (requestId: number) => Uint8Array[], bytes: number): void => {
      left++;
      this.stats.copies++;
      this.stats.copiesPending++;
      this.stats.copyBytes += bytes;
      this.send(node, build, sent);
    };
    // Read and queued at once, in this tick: later FORWARDs to `node` follow on the same link. One
    // clear for every piece, then the rows of all pieces in key order, stored keys gathered across
    // pieces into chunks of up to EXPORT_KEYS (with 512 virtual nodes a node gains ~1000 small
    // pieces; a frame per piece, each written into the receiver's store on its own, made a join slow).
    queue((r) => encodeMigrateClear(r, job, id, pieces), 0);
    for (const c of gatherChunks(t, pieces)) {
      const msg = { requestId: 0, job, table: id, steps: t.steps, task: null, keys: c.keys, rows: c.rows };
      const keyBytes =
        c.keys.kind === 'list' ? 8 * c.keys.keys.length : c.keys.kind === 'range' ? 16 : 8 * c.keys.bounds.length;
      queue((requestId) => encodeMigrateRows({ ...msg, requestId }), c.rows.byteLength + keyBytes);
    }
    const records = t.dedupe.export({ applied: false });
    queue((r) => encodeMigrateRecords(r, job, id, { records, steps: t.steps }), 0);
  }

  private send(node: string, build: (requestId: number) => Uint8Array[], done: ReplyFn): void {
    const ready = this.ready.get(node);
    if (ready !== undefined && !ready.closed) {
      ready.request(build, done);
      return;
    }
    this.link(node).then(
      (peer) => peer.request(build, done),
      (err) => done(toTabshardError(err), null),
    );
  }

  private link(node: string): Promise<RpcPeer> {
    let p = this.links.get(node);
    if (p === undefined) {
      const address = this.host.address(node);
      p =
        address === undefined
          ? Promise.reject(
              new TabshardError('TS_ERR_CONNECT_FAILED', `no ${this.dialer.kind} address for node ${node}`),
            )
          : this.dialer.dial(address).then((conn) => {
              const peer = new RpcPeer(conn, 10_000);
              conn.onclose = ((prev) => (err) => {
                prev?.(err);
                if (this.ready.get(node) === peer) this.drop(node);
              })(conn.onclose);
              // Sent first on the link: the node marks the connection as a server's before any FORWARD.
              peer.request(
                (id) => encodeJson(MsgType.HELLO, id, { role: 'server', node: this.host.id, token: this.token }),
                () => {},
              );
              this.ready.set(node, peer);
              return peer;
            });
      p.catch(() => {
        if (this.links.get(node) === p) this.links.delete(node);
      });
      this.links.set(node, p);
    }
    return p;
  }

  private drop(node: string): void {
    this.links.delete(node);
    this.ready.delete(node);
  }
}

function shapeOf(t: Table): TableShape {
  return { id: t.spec.id, keySpace: t.spec.keySpace, valueLength: t.spec.valueLength };
}
