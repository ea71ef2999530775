/**
 * The replication family (PROTOCOL.md §5.3), node to node only: FORWARD carries the state a
 * master produced for some keys (values and updater state, "rows") down the replica chain with
 * the push's task stamp; MIGRATE copies a key range to a node that is to hold it (clear the range,
 * write rows, merge at-most-once records); FORWARD_ACK answers both.
 *
 * Rows are slot-major: n·d values, then n·d floats per updater state slot (server/node/table.ts).
 */
import { TabshardError } from '../errors.ts';
import { decodeObject } from './control.ts';
import { emptyFrame, encodeFrame, Flag, type Frame, MsgType, type TaskStamp } from './frame.ts';
import { type KvKeys, requestKeys } from './kv.ts';

export interface RowsMsg {
  requestId: number;
  job: number;
  table: number;
  /** The master table's push count (Adam's step): the receiver's only rises to it. */
  steps: number;
  task: TaskStamp | null;
  keys: KvKeys;
  rows: Float32Array;
  /** FORWARD only: `rows` are a held push's values (Flag.HELD). */
  held?: boolean;
}

/** What a MIGRATE asks: clear ranges ([begin, end) pairs), write rows, or merge records (a JSON object). */
export type MigrateMsg =
  | { form: 'clear'; requestId: number; job: number; table: number; keys: KvKeys & { kind: 'range' | 'ranges' } }
  | ({ form: 'rows' } & RowsMsg)
  | { form: 'records'; requestId: number; job: number; table: number; body: Record<string, unknown> };

const shape = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);
const utf8 = new TextEncoder();

function rowsFrame(type: MsgType, m: RowsMsg): Uint8Array[] {
  if (!Number.isInteger(m.steps) || m.steps < 0 || m.steps > 0x7fffffff) throw shape(`steps ${m.steps}`);
  return encodeFrame({
    ...emptyFrame(type, m.requestId),
    flags: m.held ? Flag.HELD : 0,
    job: m.job,
    table: m.table,
    clock: m.steps,
    task: m.task,
    keys: m.keys,
    values: m.rows,
  });
}

function asRows(f: Frame, what: string): RowsMsg {
  const keys = requestKeys(f.keys, what);
  if (!f.values) throw shape(`${what} without float32 rows`);
  if (f.clock < 0) throw shape(`${what}: steps ${f.clock}`);
  const held = (f.flags & Flag.HELD) !== 0;
  if (held && (f.type !== MsgType.FORWARD || f.task === null)) throw shape(`${what}: HELD needs a FORWARD with a task`);
  return {
    requestId: f.requestId,
    job: f.job,
    table: f.table,
    steps: f.clock,
    task: f.task,
    keys,
    rows: f.values,
    held,
  };
}

export function encodeForward(m: RowsMsg): Uint8Array[] {
  return rowsFrame(MsgType.FORWARD, m);
}

export function asForward(f: Frame): RowsMsg {
  return asRows(f, 'forward');
}

export function encodeMigrateRows(m: RowsMsg): Uint8Array[] {
  return rowsFrame(MsgType.MIGRATE, m);
}

/** Clears `pieces` ([begin, end) pairs, sorted and disjoint) in one frame: a RANGE, or RANGES for several. */
export function encodeMigrateClear(
  requestId: number,
  job: number,
  table: number,
  pieces: ReadonlyArray<readonly [number, number]>,
): Uint8Array[] {
  const keys: KvKeys =
    pieces.length === 1
      ? { kind: 'range', begin: pieces[0][0], end: pieces[0][1] }
      : { kind: 'ranges', bounds: Float64Array.from(pieces.flat()) };
  return encodeFrame({ ...emptyFrame(MsgType.MIGRATE, requestId), job, table, keys });
}

/** `body`: `{records, steps}` — a table's at-most-once record (server/node/dedupe.ts) and push count. */
export function encodeMigrateRecords(
  requestId: number,
  job: number,
  table: number,
  body: { records: unknown; steps: number },
): Uint8Array[] {
  return encodeFrame({
    ...emptyFrame(MsgType.MIGRATE, requestId),
    job,
    table,
    body: utf8.encode(JSON.stringify(body)),
  });
}

export function asMigrate(f: Frame): MigrateMsg {
  const base = { requestId: f.requestId, job: f.job, table: f.table };
  if (f.body) {
    if (f.keys.kind !== 'none') throw shape('migrate records with keys');
    return { form: 'records', ...base, body: decodeObject(f) };
  }
  if (f.values) return { form: 'rows', ...asRows(f, 'migrate') };
  if (f.keys.kind !== 'range' && f.keys.kind !== 'ranges') throw shape('migrate: ranges to clear, rows, or records');
  if (f.task) throw shape('migrate clear with a task block');
  const keys = requestKeys(f.keys, 'migrate clear') as KvKeys & { kind: 'range' | 'ranges' };
  return { form: 'clear', ...base, keys };
}

export function encodeForwardAck(requestId: number): Uint8Array[] {
  return encodeFrame(emptyFrame(MsgType.FORWARD_ACK, requestId));
}
