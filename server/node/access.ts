/**
 * Who may do what on a server node's data plane (PROTOCOL.md §6.2). A node with an admin token
 * enforces: admin connections (HELLO with the token) may do anything; every other connection
 * pushes only under a task capability it presented (CAP) and reads only under a read or task
 * capability of the job. A node without a token (local development) checks nothing.
 *
 * Per connection: the read grants (job → latest expiry) and task grants (one per (job, task),
 * at most MAX_TASK_GRANTS) its CAPs gave. Per node: the key sets the manager installed (KEYSET)
 * that task grants name; every node keeps every set whole. The checks of a push or read are
 * synchronous and allocate nothing.
 */
import type { ErrorCode } from '../../shared/errors.ts';
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { asKeySet, parseCap } from '../../shared/protocol/cap.ts';
import { type Frame, MsgType, type TaskStamp } from '../../shared/protocol/frame.ts';
import { encodeAck, type KvKeys } from '../../shared/protocol/kv.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { CapabilityVerifier, type TableGrant, type TaskClaims } from '../auth/capability.ts';
import { type KeySet, listHolds, mergeRanges, rangesHold, setSize, withinRange } from './key-sets.ts';
import type { Table } from './table.ts';

/** Task grants one connection holds at most (past it: expired ones go, then the oldest). */
export const MAX_TASK_GRANTS = 64;
/** Jobs one connection holds read grants for at most (past it: expired ones go, then the oldest). */
export const MAX_READ_GRANTS = 64;

export interface AccessStats {
  /** CAP frames whose capability verified (and was remembered). */
  caps: number;
  /** Requests refused by the checks of this module, by code. */
  refused: Partial<Record<ErrorCode, number>>;
}

export interface KeySetStats {
  sets: number;
  keys: number;
}

interface Grants {
  /** Oldest first. */
  tasks: TaskClaims[];
  /** job → expiry (ms since the epoch), oldest first. */
  reads: Map<number, number>;
}

export class Access {
  private verifier: CapabilityVerifier | null = null;
  private readonly admins = new WeakSet<Conn>();
  private readonly servers = new WeakSet<Conn>();
  private readonly grants = new WeakMap<Conn, Grants>();
  /** job → table → set id → key set. */
  private readonly sets = new Map<number, Map<number, Map<number, KeySet>>>();
  private setCount = 0;
  private setKeys = 0;
  private caps = 0;
  private readonly refused: Partial<Record<ErrorCode, number>> = {};

  /**
   * `enforcing`: the node has an admin token. `now`: ms since the epoch (the capability clock;
   * tests inject one).
   */
  constructor(
    readonly enforcing: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * CAP (PROTOCOL.md §6.2): `present`, then ACK — synchronously, so pushes a worker sends right
   * behind it on the connection are checked against it. KEYSET (admin): the table must exist and
   * the keys lie in its key space; `defineKeySet`, then ACK.
   */
  serve(conn: Conn, f: Frame, table: (job: number, id: number) => Table): void {
    if (f.type === MsgType.CAP) {
      this.present(conn, parseCap(f));
      conn.send(encodeAck(f.requestId));
      return;
    }
    this.checkAdmin(conn);
    const m = asKeySet(f);
    table(m.job, m.table).count(m.keys);
    this.defineKeySet(m.job, m.table, m.id, m.keys);
    conn.send(encodeAck(m.requestId));
  }

  /** A connection said HELLO as admin (its token checked). */
  admitAdmin(conn: Conn): void {
    this.admins.add(conn);
  }

  /** A connection said HELLO as a server of the group (its token checked). */
  admitServer(conn: Conn): void {
    this.servers.add(conn);
  }

  /** Changes to the cluster's layout need the admin token, when the node has one. */
  checkAdmin(conn: Conn): void {
    if (this.enforcing && !this.admins.has(conn))
      throw new TabshardError('TS_ERR_FORBIDDEN', 'say HELLO as admin first');
  }

  /**
   * The verifier for a RING install's `capabilityKey` (TS_ERR_INVALID_ARGUMENT if it is no
   * Ed25519 SPKI key); undefined: the install leaves the key as it is. Checked before the
   * install changes anything; `useKey` then installs it.
   */
  verifierFor(spki: string | undefined): CapabilityVerifier | undefined {
    if (spki === undefined) return undefined;
    if (this.verifier?.spki === spki) return this.verifier;
    return new CapabilityVerifier(spki);
  }

  useKey(v: CapabilityVerifier | undefined): void {
    if (v !== undefined) this.verifier = v;
  }

  /**
   * CAP: verifies `token` and remembers what it grants on `conn`. A node that does not enforce
   * takes it without checking. A task grant replaces the connection's grant for the same (job,
   * task) unless that one has a newer attempt (or the same attempt and a later expiry).
   */
  present(conn: Conn, token: string): void {
    if (!this.enforcing) return;
    if (this.verifier === null) throw this.refuse('TS_ERR_CAPABILITY_INVALID', 'no capability key installed');
    const now = this.now();
    let claims: ReturnType<CapabilityVerifier['verify']>;
    try {
      claims = this.verifier.verify(token, now);
    } catch (err) {
      const e = toTabshardError(err);
      this.refused[e.code] = (this.refused[e.code] ?? 0) + 1;
      throw e;
    }
    this.caps++;
    let g = this.grants.get(conn);
    if (g === undefined) {
      g = { tasks: [], reads: new Map() };
      this.grants.set(conn, g);
    }
    if (claims.kind === 'read') {
      const have = g.reads.get(claims.job);
      if (have !== undefined) {
        g.reads.set(claims.job, Math.max(have, claims.exp));
        return;
      }
      if (g.reads.size >= MAX_READ_GRANTS) {
        for (const [job, exp] of g.reads) if (exp <= now) g.reads.delete(job);
        if (g.reads.size >= MAX_READ_GRANTS) g.reads.delete(g.reads.keys().next().value as number);
      }
      g.reads.set(claims.job, claims.exp);
      return;
    }
    const i = g.tasks.findIndex((c) => c.job === claims.job && c.task === claims.task);
    if (i >= 0) {
      const have = g.tasks[i];
      if (claims.attempt < have.attempt || (claims.attempt === have.attempt && claims.exp < have.exp)) return;
      g.tasks.splice(i, 1);
    }
    if (g.tasks.length >= MAX_TASK_GRANTS) {
      g.tasks = g.tasks.filter((c) => c.exp > now);
      if (g.tasks.length >= MAX_TASK_GRANTS) g.tasks.shift();
    }
    g.tasks.push(claims);
  }

  /**
   * The capability checks of a PUSH that come before the table's (PROTOCOL.md §5): the grant
   * of the table that covers the push's stamp, or null when nothing is to be checked (the node
   * does not enforce, or an admin connection). Keys are checked later, by `checkKeys`.
   */
  pushGrant(conn: Conn, job: number, table: number, task: TaskStamp | null): TableGrant | null {
    if (!this.enforcing || this.admins.has(conn)) return null;
    if (task === null || task.task === 0)
      throw this.refuse('TS_ERR_CAPABILITY_REQUIRED', 'only admin clients push outside a task');
    const g = this.grants.get(conn);
    let c: TaskClaims | null = null;
    if (g !== undefined)
      for (let i = 0; i < g.tasks.length; i++) {
        const x = g.tasks[i];
        if (x.job === job && x.task === task.task) {
          c = x;
          break;
        }
      }
    if (c === null || c.worker !== task.worker || c.attempt !== task.attempt)
      throw this.refuse(
        'TS_ERR_CAPABILITY_REQUIRED',
        `stamp (worker ${task.worker}, task ${task.task}, attempt ${task.attempt}) of job ${job} is not covered by a capability on this connection${this.verifier === null ? ' (no capability key installed)' : ''}`,
      );
    if (c.exp <= this.now())
      throw this.refuse('TS_ERR_CAPABILITY_EXPIRED', `task ${task.task} attempt ${task.attempt}`);
    const tables = c.tables;
    for (let i = 0; i < tables.length; i++) if (tables[i].id === table) return tables[i];
    throw this.refuse('TS_ERR_KEYS_OUTSIDE_TASK', `table ${table} is not a table of task ${task.task}`);
  }

  /** Every key of a push within its grant's range or key set (TS_ERR_KEYS_OUTSIDE_TASK). */
  checkKeys(job: number, table: number, grant: TableGrant, keys: KvKeys): void {
    if (grant.range !== undefined) {
      if (!withinRange(grant.range[0], grant.range[1], keys))
        throw this.refuse(
          'TS_ERR_KEYS_OUTSIDE_TASK',
          `keys outside [${grant.range[0]}, ${grant.range[1]}) of table ${table}`,
        );
      return;
    }
    if (grant.keys === undefined) return;
    const set = this.sets.get(job)?.get(table)?.get(grant.keys);
    if (set === undefined)
      throw this.refuse('TS_ERR_KEYS_OUTSIDE_TASK', `no key set ${grant.keys} of table ${table} on this node`);
    if (!(set.list !== null ? listHolds(set.list, keys) : rangesHold(set.bounds, keys)))
      throw this.refuse('TS_ERR_KEYS_OUTSIDE_TASK', `keys outside key set ${grant.keys} of table ${table}`);
  }

  /** PULL and SUBSCRIBE: a live read grant of `job`, or a live task grant of it. */
  checkRead(conn: Conn, job: number): void {
    if (!this.enforcing || this.admins.has(conn)) return;
    const live = this.liveGrant(conn, job);
    if (live === true) return;
    throw live === false
      ? this.refuse('TS_ERR_CAPABILITY_EXPIRED', `every grant of job ${job} on this connection expired`)
      : this.refuse('TS_ERR_CAPABILITY_REQUIRED', `reading job ${job} needs a capability`);
  }

  /** RING query: admin and server connections, or one with a live grant of `job`. */
  checkRingQuery(conn: Conn, job: number): void {
    if (!this.enforcing || this.admins.has(conn) || this.servers.has(conn)) return;
    if (this.liveGrant(conn, job) !== true)
      throw this.refuse('TS_ERR_CAPABILITY_REQUIRED', `the ring of job ${job} needs a capability of the job`);
  }

  /** Whether `conn` is an admin's or a server's (or the node enforces nothing). */
  isOperator(conn: Conn): boolean {
    return !this.enforcing || this.admins.has(conn) || this.servers.has(conn);
  }

  /** STATS: admin and server connections, or one with any live grant. */
  checkStats(conn: Conn): void {
    if (this.isOperator(conn)) return;
    const g = this.grants.get(conn);
    const now = this.now();
    if (g !== undefined) {
      for (const exp of g.reads.values()) if (exp > now) return;
      for (const c of g.tasks) if (c.exp > now) return;
    }
    throw this.refuse('TS_ERR_CAPABILITY_REQUIRED', 'STATS needs an admin HELLO or a capability');
  }

  /** True: a live grant of `job`; false: only expired ones; null: none. */
  private liveGrant(conn: Conn, job: number): boolean | null {
    const g = this.grants.get(conn);
    if (g === undefined) return null;
    const now = this.now();
    let found: boolean | null = null;
    const r = g.reads.get(job);
    if (r !== undefined) {
      if (r > now) return true;
      found = false;
    }
    for (let i = 0; i < g.tasks.length; i++) {
      const c = g.tasks[i];
      if (c.job !== job) continue;
      if (c.exp > now) return true;
      found = false;
    }
    return found;
  }

  /**
   * KEYSET: stores key set `id` of (job, table) — a copy of a list (it may live in the node's
   * scratch), a range or ranges (adjacent ones merged) — replacing one of the same id.
   */
  defineKeySet(job: number, table: number, id: number, keys: KvKeys): void {
    let set: KeySet;
    let n: number;
    if (keys.kind === 'list') {
      set = { list: keys.keys.slice(), bounds: null };
      n = keys.keys.length;
    } else {
      const bounds = mergeRanges(keys.kind === 'range' ? Float64Array.of(keys.begin, keys.end) : keys.bounds);
      set = { list: null, bounds };
      n = 0;
      for (let i = 0; i < bounds.length; i += 2) n += bounds[i + 1] - bounds[i];
    }
    let tables = this.sets.get(job);
    if (tables === undefined) {
      tables = new Map();
      this.sets.set(job, tables);
    }
    let ids = tables.get(table);
    if (ids === undefined) {
      ids = new Map();
      tables.set(table, ids);
    }
    const old = ids.get(id);
    if (old !== undefined) {
      this.setCount--;
      this.setKeys -= setSize(old);
    }
    ids.set(id, set);
    this.setCount++;
    this.setKeys += n;
  }

  stats(): AccessStats {
    return { caps: this.caps, refused: { ...this.refused } };
  }

  keySetStats(): KeySetStats {
    return { sets: this.setCount, keys: this.setKeys };
  }

  private refuse(code: ErrorCode, detail: string): TabshardError {
    this.refused[code] = (this.refused[code] ?? 0) + 1;
    return new TabshardError(code, detail);
  }
}
