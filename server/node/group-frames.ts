/**
 * The frames a server node takes only from the other nodes of its group (PROTOCOL.md §5.3):
 * FORWARD (a master's rows for keys this node replicates, written as they are and passed down
 * the chain) and MIGRATE (a range copied here: clear, rows, fences). A connection is admitted by
 * HELLO {role:"server"} with the group's token; a node the installed ring does not name is
 * refused, so one declared dead cannot overwrite the ranges its successors took over.
 */
import { TabshardError } from '../../shared/errors.ts';
import { encodeError } from '../../shared/protocol/control.ts';
import { type Frame, MsgType } from '../../shared/protocol/frame.ts';
import { asForward, asMigrate, encodeForwardAck } from '../../shared/protocol/replication.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { type Chains, precedesAll } from './chain.ts';
import { parseDedupeRecords } from './dedupe.ts';
import { valuesFor } from './held.ts';
import type { HeldValues, Replicator } from './replication.ts';
import { keyList, type Table } from './table.ts';

export interface GroupHost {
  /** The table (TS_ERR_UNKNOWN_TABLE when the node has none). */
  table(job: number, id: number): Table;
  chains(): Chains | null;
  readonly replicator: Replicator | null;
}

export class GroupFrames {
  /** Node id by connection, for connections that said HELLO as a server of the group. */
  private readonly servers = new WeakMap<Conn, string>();

  constructor(
    private readonly self: string,
    private readonly host: GroupHost,
  ) {}

  /** A connection said HELLO as server `node` (its token already checked). */
  admit(conn: Conn, node: string): void {
    this.servers.set(conn, node);
  }

  /** Serves a FORWARD or MIGRATE; throws (a coded error, nothing changed) when it is refused. */
  serve(conn: Conn, f: Frame): void {
    const from = this.sender(conn);
    if (f.type === MsgType.FORWARD) this.forward(conn, f, from);
    else this.migrate(conn, f, from);
  }

  private sender(conn: Conn): string {
    const node = this.servers.get(conn);
    if (node === undefined)
      throw new TabshardError(
        'TS_ERR_FORBIDDEN',
        'FORWARD and MIGRATE are for the server group; say HELLO as a server first',
      );
    const ring = this.host.chains();
    if (ring && ring.version > 0 && !ring.nodes.includes(node))
      throw new TabshardError('TS_ERR_NOT_OWNER', `node ${node} is not in ring v${ring.version}`);
    return node;
  }

  private forward(conn: Conn, f: Frame, from: string): void {
    const m = asForward(f);
    const t = this.host.table(m.job, m.table);
    // Only from a node before this one in the keys' chains: after a switch the old master's late
    // forwards are refused (its push then goes to the new master), never written over newer rows.
    const chains = this.host.chains();
    if (chains && chains.version > 0 && !precedesAll(chains.of(t.spec), from, this.self, m.keys))
      throw new TabshardError(
        'TS_ERR_NOT_OWNER',
        `${from} does not precede ${this.self} in these keys' chains (ring v${chains.version})`,
      );
    let held: HeldValues | undefined;
    if (m.held) {
      // A held push (§6 TABLE `hold`): held here too, under its stamp; a resend is a duplicate
      // here, and goes on down the chain all the same (its first copy may still be on its way).
      if (!t.held) throw new TabshardError('TS_ERR_FRAME_MALFORMED', `table ${m.table} does not hold pushes`);
      if (t.push(m.keys, m.rows, m.task)) held = t.lastHeld!;
      else {
        const keys = keyList(m.keys).slice();
        const values = m.rows.slice();
        held = (sub) => valuesFor(keys, values, t.spec.valueLength, sub);
      }
    } else {
      t.writeRows(m.keys, m.rows);
      t.advanceSteps(m.steps);
      if (m.task) t.dedupe.record(m.task);
    }
    const requestId = m.requestId;
    const r = this.host.replicator;
    if (r === null) {
      conn.send(encodeForwardAck(requestId));
      return;
    }
    // Down the chain; this node's ack waits for the rest of it.
    r.forward(
      t,
      m.keys,
      m.task,
      'replica',
      (err) => conn.send(err ? encodeError(requestId, err) : encodeForwardAck(requestId)),
      held,
    );
  }

  private migrate(conn: Conn, f: Frame, from: string): void {
    const m = asMigrate(f);
    const t = this.host.table(m.job, m.table);
    // A copy comes from the member just before this one in the range's chains, as forwards do
    // (never to a master): one sent under other chains is refused and sent again once both agree.
    const chains = this.host.chains();
    const keys = m.form === 'records' ? null : m.keys;
    if (keys && chains && chains.version > 0 && !precedesAll(chains.of(t.spec), from, this.self, keys))
      throw new TabshardError(
        'TS_ERR_NOT_OWNER',
        `${from} does not precede ${this.self} in these keys' chains (ring v${chains.version})`,
      );
    if (m.form === 'clear') {
      const k = m.keys;
      if (k.kind === 'range') t.dropRange(k.begin, k.end);
      else {
        const ranges: Array<[number, number]> = [];
        for (let i = 0; i < k.bounds.length; i += 2) ranges.push([k.bounds[i], k.bounds[i + 1]]);
        t.dropRanges(ranges);
      }
    } else if (m.form === 'rows') {
      t.writeRows(m.keys, m.rows);
      t.advanceSteps(m.steps);
    } else {
      const steps = m.body.steps;
      if (!Number.isInteger(steps) || (steps as number) < 0)
        throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'migrate records: steps');
      t.dedupe.merge(parseDedupeRecords(m.body.records));
      t.advanceSteps(steps as number);
    }
    conn.send(encodeForwardAck(m.requestId));
  }
}
