/**
 * A worker's credentials toward the server nodes (PROTOCOL.md §6, §6.2): the job's read
 * capability and the task capabilities of its recent leases (opaque tokens from the scheduler),
 * and, for an operator's tool only, the cluster's admin token. They are presented on each node
 * connection as soon as it is up — the admin HELLO, then every capability (CAP) — and a new
 * capability on every connection already up, before the requests it covers: a node handles a
 * connection's frames in order, so a CAP sent just before a push covers it without a round trip.
 */
import { encodeCap } from '../shared/protocol/cap.ts';
import { encodeJson } from '../shared/protocol/control.ts';
import { MsgType } from '../shared/protocol/frame.ts';
import type { RpcPeer } from '../shared/rpc.ts';

/** Task capabilities kept (the newest; a worker runs at most a few leases at once). */
export const TASK_GRANTS_KEPT = 8;

export class Credentials {
  private read: string | null = null;
  /** Task capabilities by task id, oldest first. */
  private readonly tasks = new Map<number, string>();
  /** CAP frames (or the admin HELLO) a node refused: a capability that did not verify or had expired. */
  refused = 0;

  constructor(
    private readonly job: () => number,
    private readonly adminToken?: string,
  ) {}

  /**
   * Keeps `token` — the read capability (`task` undefined) or the capability of `task` — and
   * presents it on each of `peers` (the connections already up).
   */
  add(token: string, task: number | undefined, peers: Iterable<RpcPeer>): void {
    if (task === undefined) this.read = token;
    else {
      this.tasks.delete(task);
      this.tasks.set(task, token);
      while (this.tasks.size > TASK_GRANTS_KEPT) this.tasks.delete(this.tasks.keys().next().value as number);
    }
    for (const peer of peers) if (!peer.closed) this.cap(peer, token);
  }

  /** Forgets the capability of `task` (its pushes are acknowledged or abandoned). */
  drop(task: number): void {
    this.tasks.delete(task);
  }

  /** Presents everything held on a new connection: the admin HELLO, the read capability, the tasks' (`readOnly`: no task). */
  presentAll(peer: RpcPeer, readOnly = false): void {
    if (this.adminToken !== undefined)
      peer.request(
        (id) => encodeJson(MsgType.HELLO, id, { role: 'admin', token: this.adminToken }),
        (err) => this.count(err),
      );
    if (this.read !== null) this.cap(peer, this.read);
    if (!readOnly) for (const t of this.tasks.values()) this.cap(peer, t);
  }

  private cap(peer: RpcPeer, token: string): void {
    peer.request(
      (id) => encodeCap(id, this.job(), token),
      (err) => this.count(err),
    );
  }

  private count(err: unknown): void {
    if (err) this.refused++;
  }
}
