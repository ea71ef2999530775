/**
 * Checkpoint files (PROTOCOL.md §5.4), written and restored on the server manager's CHECKPOINT
 * and RESTORE (admin only). Format (normative): 8 bytes ASCII magic `TSCKPT01`, then records,
 * each a u32 little-endian byte length and one frame in the normal encoding. Per table of the
 * job: MIGRATE rows frames (request id 0, no task block, `clock` = the table's push count) with
 * the saved ranges' exported rows, then one MIGRATE records frame `{"records":…,"steps":n}`: the
 * whole at-most-once record (applied seqs included), there even when no key is saved. Written as
 * `path.tmp`, fsynced, renamed to `path`, the directory fsynced; RESTORE checks size and SHA-256.
 *
 * Restore is meant for freshly defined, empty tables before any worker pushes: it writes every
 * saved row of every file (rows not in the files keep what the table held), unites the records,
 * raises push counts to the largest saved, then drops the ranges the node's chains do not name it in.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { TabshardError } from '../../shared/errors.ts';
import { decodeFrame, HEADER_BYTES, MsgType } from '../../shared/protocol/frame.ts';
import { countKeys } from '../../shared/protocol/kv.ts';
import { asMigrate, encodeMigrateRecords, encodeMigrateRows, type RowsMsg } from '../../shared/protocol/replication.ts';
import type { ChainRange, Ring } from '../../shared/ring.ts';
import type { Chains } from './chain.ts';
import { type DedupeRecords, parseDedupeRecords } from './dedupe.ts';
import { EXPORT_KEYS, rowsLength } from './rows.ts';
import type { Table } from './table.ts';

const MAGIC = new TextEncoder().encode('TSCKPT01');
const CHUNK_BYTES = 64 << 20; // largest rows segment of a frame: a chunk holds fewer keys if need be
const REFUSED = ['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'ENOTSUP'];

/** A file's size and SHA-256 (lowercase hex). */
export type FileSum = { bytes: number; sha256: string };
/** A checkpoint file as CHECKPOINT reports it and RESTORE names it. */
export type CheckpointFile = FileSum & { path: string };
export type CheckpointReply = CheckpointFile & { node: string; keys: number; tables: number };
/** RESTORE's reply body: `keys` counts the keys of every rows frame written (before the drop). */
export type RestoreReply = { node: string; keys: number; bytes: number };
type Body = Record<string, unknown>;
type Ranges = Array<[number, number]>;
export type Snapshot = { pieces: Uint8Array[]; keys: number; tables: number };

/** A frame of a checkpoint file: MIGRATE rows, or a table's at-most-once record and push count. */
export type CheckpointFrame =
  | ({ form: 'rows' } & RowsMsg)
  | { form: 'records'; job: number; table: number; records: DedupeRecords; steps: number };

/** What CHECKPOINT and RESTORE act on: the node, the job, its tables here, its installed layout now (or none). */
export type JobScope = { self: string; job: number; tables?: ReadonlyMap<number, Table>; layout: () => Layout };
type Layout = { ring: Ring; chains: Chains } | null;

const text = (err: unknown) => (err instanceof Error ? err.message : String(err));
const io = (path: string, err: unknown) =>
  new TabshardError('TS_ERR_CHECKPOINT_IO', `${path}: ${text(err)}`, { cause: err });
const corrupt = (path: string, why: string, cause?: unknown) =>
  new TabshardError('TS_ERR_CHECKPOINT_CORRUPT', `${path}: ${why}`, { cause });
const malformed = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);
const bytesOf = (parts: readonly Uint8Array[]) => parts.reduce((n, p) => n + p.byteLength, 0);

/** The pieces of a file of `tables` saving ranges `ranges(t)` (sorted, disjoint), copied before this returns. */
export function snapshotJob(tables: Iterable<Table>, ranges: (t: Table) => Ranges): Snapshot {
  const pieces: Uint8Array[] = [MAGIC];
  const record = (parts: Uint8Array[]): void => {
    const head = new Uint8Array(4 + parts[0].byteLength);
    new DataView(head.buffer).setUint32(0, bytesOf(parts), true);
    head.set(parts[0], 4);
    pieces.push(head, ...parts.slice(1));
  };
  let keys = 0;
  let count = 0;
  for (const t of tables) {
    const { job, id, valueLength } = t.spec;
    const steps = t.steps;
    const perKey = 4 * rowsLength(1, valueLength, t.stateSlots);
    const maxKeys = Math.max(1, Math.min(EXPORT_KEYS, Math.floor(CHUNK_BYTES / perKey)));
    for (const [b, e] of ranges(t))
      for (const c of t.exportRange(b, e, maxKeys)) {
        keys += countKeys(c.keys);
        record(encodeMigrateRows({ requestId: 0, job, table: id, steps, task: null, keys: c.keys, rows: c.rows }));
      }
    record(encodeMigrateRecords(0, job, id, { records: t.dedupe.export(), steps }));
    count++;
  }
  return { pieces, keys, tables: count };
}

/** Writes the file atomically and durably (see the header); its size and SHA-256 (hex). */
export async function writeCheckpointFile(path: string, pieces: Uint8Array[]): Promise<FileSum> {
  const tmp = `${path}.tmp`;
  const hash = createHash('sha256');
  for (const p of pieces) hash.update(p);
  try {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(tmp, 'w');
    try {
      // One buffer, one write (a write per piece costs a thread-pool round trip each: 173 pieces
      // took 9–19 ms against 1.4 ms for the same 400 KB at once).
      const all = Buffer.concat(pieces);
      for (let at = 0; at < all.byteLength; ) at += (await fh.write(all, at, all.byteLength - at)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dir = await open(dirname(path), 'r');
    // Some platforms refuse to fsync a directory: the rename then stands as durable as they make it.
    await dir
      .sync()
      .catch((err) => REFUSED.includes(err.code) || Promise.reject(err))
      .finally(() => dir.close());
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw io(path, err);
  }
  return { bytes: bytesOf(pieces), sha256: hash.digest('hex') };
}

/** A file's bytes once size, SHA-256, magic and record bounds check out (else _CORRUPT; unreadable: _IO). */
export async function readCheckpointFile(path: string, expect: FileSum): Promise<Uint8Array> {
  const file: Uint8Array = await readFile(path).catch((err) => Promise.reject(io(path, err)));
  if (file.byteLength !== expect.bytes) throw corrupt(path, `${file.byteLength} bytes, expected ${expect.bytes}`);
  const sha256 = createHash('sha256').update(file).digest('hex');
  if (sha256 !== expect.sha256.toLowerCase()) throw corrupt(path, `sha256 ${sha256}, expected ${expect.sha256}`);
  records(file, path);
  return file;
}

/** The frames of a file's records, as [offset, length] pairs; checks the magic and the bounds. */
function records(file: Uint8Array, path: string): Ranges {
  if (file.byteLength < MAGIC.length || MAGIC.some((b, i) => file[i] !== b)) throw corrupt(path, 'no TSCKPT01 magic');
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: Ranges = [];
  for (let off = MAGIC.length; off < file.byteLength; ) {
    const len = off + 4 <= file.byteLength ? dv.getUint32(off, true) : -1;
    if (len < HEADER_BYTES || off + 4 + len > file.byteLength) throw corrupt(path, `record at ${off}: length ${len}`);
    out.push([off + 4, len]);
    off += 4 + len;
  }
  return out;
}

/** The MIGRATE rows and records frames of a verified file, in file order (TS_ERR_CHECKPOINT_CORRUPT else). */
export function* checkpointFrames(bytes: Uint8Array, path = 'checkpoint'): Generator<CheckpointFrame> {
  // A plain Uint8Array: decodeFrame copies misaligned segments with slice, which on a Buffer is a view.
  const file = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const [at, len] of records(file, path)) {
    try {
      const f = decodeFrame(file.subarray(at, at + len));
      if (f.type !== MsgType.MIGRATE) throw new Error(`type 0x${f.type.toString(16)}`);
      const m = asMigrate(f);
      if (m.form === 'clear') throw new Error('a MIGRATE clear');
      if (m.form === 'rows') yield m;
      else {
        const steps = m.body.steps as number;
        if (!Number.isSafeInteger(steps) || steps < 0) throw new Error(`steps ${steps}`);
        yield { form: 'records', job: m.job, table: m.table, records: parseDedupeRecords(m.body.records), steps };
      }
    } catch (err) {
      throw corrupt(path, `record at ${at - 4}: ${text(err)}`, err);
    }
  }
}

/** `[begin, end)` pieces of the layout's ranges that `keep` accepts, adjacent ones merged. */
function rangesWhere(ranges: readonly ChainRange[], keep: (chain: readonly string[]) => boolean): Ranges {
  const out: Ranges = [];
  for (const r of ranges)
    if (keep(r.chain)) {
      const last = out[out.length - 1];
      if (last && last[1] === r.begin) last[1] = r.end;
      else out.push([r.begin, r.end]);
    }
  return out;
}

function jobTables({ job, tables }: Pick<JobScope, 'job' | 'tables'>): ReadonlyMap<number, Table> {
  if (tables?.size) return tables;
  throw new TabshardError('TS_ERR_UNKNOWN_JOB', `job ${job} has no tables here`);
}

function absolutePath(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096 || !isAbsolute(v))
    throw malformed(`${what} must be an absolute file path`);
  return v;
}

/**
 * CHECKPOINT `{"path"}`: saves the ranges `self` masters (no layout: all keys) of every table of
 * the job, as copied before this returns; settles once the file is durably in place.
 */
export function checkpointJob({ self, ...s }: JobScope, body: Body): Promise<CheckpointReply> {
  const path = absolutePath(body.path, 'checkpoint path');
  const layout = s.layout();
  const { pieces, ...held } = snapshotJob(jobTables(s).values(), (t) =>
    layout
      ? rangesWhere(layout.ring.chainRanges(t.spec, layout.chains.k).ranges, (c) => c[0] === self)
      : [[0, t.spec.keySpace]],
  );
  return writeCheckpointFile(path, pieces).then((r) => ({ node: self, path, ...r, ...held }));
}

/** RESTORE's `files`: 1 to 1024 of `{path, bytes, sha256}`; TS_ERR_FRAME_MALFORMED otherwise. */
export function parseRestore(body: Body): CheckpointFile[] {
  const files = body.files;
  if (!Array.isArray(files) || files.length === 0 || files.length > 1024)
    throw malformed('restore needs files: 1 to 1024 of {path, bytes, sha256}');
  return files.map((x: unknown, i) => {
    const o = (typeof x === 'object' && x !== null ? x : {}) as Body;
    const path = absolutePath(o.path, `files[${i}].path`);
    if (!Number.isSafeInteger(o.bytes) || (o.bytes as number) < 0) throw malformed(`files[${i}].bytes`);
    if (typeof o.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.sha256)) throw malformed(`files[${i}].sha256`);
    return { path, bytes: o.bytes as number, sha256: o.sha256.toLowerCase() };
  });
}

/**
 * RESTORE `{"files"}`: reads and checks every file, then every frame against the job's tables
 * (t.count: keys past the key space), before anything is written; then writes, merges and drops.
 */
export function restoreJob(scope: JobScope, body: Body): Promise<RestoreReply> {
  const { self, job } = scope;
  const files = parseRestore(body);
  const tables = jobTables(scope);
  return Promise.all(files.map((f) => readCheckpointFile(f.path, f))).then((data) => {
    const frames: Array<{ t: Table; m: CheckpointFrame }> = [];
    data.forEach((file, i) => {
      const { path } = files[i];
      for (const m of checkpointFrames(file, path)) {
        if (m.job !== job) throw corrupt(path, `a frame of job ${m.job}, not ${job}`);
        const t = tables.get(m.table);
        if (!t) throw new TabshardError('TS_ERR_UNKNOWN_TABLE', `job ${job} table ${m.table} (in ${path})`);
        if (m.form === 'rows' && m.rows.length !== rowsLength(t.count(m.keys), t.spec.valueLength, t.stateSlots))
          throw new TabshardError('TS_ERR_VALUE_LENGTH', `${path}: rows of table ${m.table} not of its shape`);
        frames.push({ t, m });
      }
    });
    // Everything checked: from here on nothing throws.
    let keys = 0;
    for (const { t, m } of frames) {
      if (m.form === 'rows') {
        t.writeRows(m.keys, m.rows);
        keys += countKeys(m.keys);
      } else t.dedupe.merge(m.records);
      t.advanceSteps(m.steps);
    }
    const layout = scope.layout(); // as installed now: a ring may have come while the files were read
    if (layout)
      for (const t of new Set(frames.map((x) => x.t)))
        t.dropRanges(rangesWhere(layout.chains.of(t.spec).ranges, (c) => !c.includes(self)));
    return { node: self, keys, bytes: files.reduce((n, f) => n + f.bytes, 0) };
  });
}
