/**
 * A job's checkpoints in the data directory (docs/architecture.md §6): every server node writes
 * the ranges it masters to one file (server/node/checkpoint.ts), then a manifest naming the
 * files with their sizes and SHA-256 sums — and the scheduler's progress at the cut — is written
 * atomically (temp file, fsync, rename) and the checkpoint recorded in the store. A checkpoint
 * whose manifest or files fail their checks is skipped for the one before it, with a message.
 *
 * Layout: <data dir>/jobs/<job>/<seq>/manifest.json and <node>.ckpt; the newest KEEP are kept.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { encodeJson } from '../../shared/protocol/control.ts';
import { MsgType } from '../../shared/protocol/frame.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { ServerManager } from '../manager.ts';
import { readCheckpointFile, writeCheckpointFile } from '../node/checkpoint.ts';
import type { SchedulerProgress } from '../scheduler/types.ts';
import type { DurableStore, StoredCheckpoint } from './store.ts';

/** Checkpoints kept per job (the newest; an unusable one falls back to the one before). */
export const KEEP = 2;
const FORMAT = 'tabshard-checkpoint/1';

export interface CheckpointFile {
  node: string;
  /** File name inside the checkpoint's folder. */
  file: string;
  bytes: number;
  sha256: string;
  keys: number;
}

export interface Manifest {
  format: typeof FORMAT;
  job: number;
  seq: number;
  iteration: number;
  ring: number;
  createdAt: number;
  tables: TableSpec[];
  files: CheckpointFile[];
  progress: SchedulerProgress;
}

/** A checkpoint chosen to resume from: its record and its verified manifest. */
export interface UsableCheckpoint {
  checkpoint: StoredCheckpoint;
  manifest: Manifest;
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

const corrupt = (why: string) => new TabshardError('TS_ERR_CHECKPOINT_CORRUPT', why);

export class Checkpoints {
  constructor(
    readonly dataDir: string,
    private readonly store: DurableStore,
    private readonly manager: Pick<ServerManager, 'callRing'>,
    /** One line per fallback or cleanup (the CLI prints them). */
    private readonly say: (line: string) => void = () => {},
  ) {}

  jobDir(job: number): string {
    return join(this.dataDir, 'jobs', `${job}`);
  }

  /**
   * Takes checkpoint `seq` + 1 of `job`: call while its scheduler holds leases (no lease out),
   * so every node's copy and the progress describe one cut; the hold may end at `copied`.
   */
  async take(
    job: number,
    iteration: number,
    progress: SchedulerProgress,
    tables: TableSpec[],
    /** Every node has copied its part (the cut is taken; the files are being written): leases may go on. */
    copied?: () => void,
  ) {
    const t0 = performance.now();
    const seq = (this.store.checkpoints(job)[0]?.seq ?? 0) + 1;
    const dir = join(this.jobDir(job), `${seq}`);
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true }); // left by a crash mid-checkpoint
    const mark = this.store.grantsMark();
    const { ring, replies } = await this.manager.callRing(
      (node, id) => encodeJson(MsgType.CHECKPOINT, id, { path: join(dir, `${node}.ckpt`) }, job),
      copied,
    );
    const nodesMs = Math.round(performance.now() - t0);
    const files: CheckpointFile[] = [...replies].map(([node, r]) => ({
      node,
      file: `${node}.ckpt`,
      bytes: r.bytes as number,
      sha256: r.sha256 as string,
      keys: r.keys as number,
    }));
    const manifest: Manifest = {
      format: FORMAT,
      job,
      seq,
      iteration,
      ring,
      createdAt: Date.now(),
      tables,
      files,
      progress,
    };
    const body = JSON.stringify(manifest);
    const text = `${JSON.stringify({ sha256: sha256(body), manifest })}\n`;
    const m = await writeCheckpointFile(join(dir, 'manifest.json'), [new TextEncoder().encode(text)]);
    const bytes = files.reduce((s, f) => s + f.bytes, m.bytes);
    this.store.addCheckpoint({ job, seq, iteration, dir, bytes, progress }, mark);
    for (const old of this.store.checkpoints(job).slice(KEEP)) {
      this.store.dropCheckpoint(job, old.seq);
      await rm(old.dir, { recursive: true, force: true });
    }
    return { seq, iteration, bytes, ms: Math.round(performance.now() - t0), nodesMs, at: manifest.createdAt };
  }

  /**
   * The newest checkpoint of `job` whose manifest and files pass their checks (read here, and
   * again by every node as it restores); null when the job has none.
   */
  async latestUsable(job: number): Promise<UsableCheckpoint | null> {
    for (const c of this.store.checkpoints(job)) {
      try {
        const manifest = await readManifest(join(c.dir, 'manifest.json'));
        if (manifest.job !== job || manifest.seq !== c.seq)
          throw corrupt(`manifest of job ${manifest.job} #${manifest.seq}`);
        for (const f of manifest.files) await readCheckpointFile(join(c.dir, f.file), f);
        return { checkpoint: c, manifest };
      } catch (err) {
        this.say(
          `checkpoint ${c.seq} of job ${job} (iteration ${c.iteration}) is unusable: ${toTabshardError(err).message}; trying the one before`,
        );
      }
    }
    return null;
  }

  /** Every node loads the keys it holds under its ring from the checkpoint's files. */
  async restore(job: number, u: UsableCheckpoint): Promise<{ keys: number }> {
    const files = u.manifest.files.map((f) => ({
      path: join(u.checkpoint.dir, f.file),
      bytes: f.bytes,
      sha256: f.sha256,
    }));
    const { replies } = await this.manager.callRing((_node, id) => encodeJson(MsgType.RESTORE, id, { files }, job));
    let keys = 0;
    for (const r of replies.values()) keys += (r.keys as number) ?? 0;
    return { keys };
  }
}

async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TabshardError('TS_ERR_CHECKPOINT_IO', `${path}: ${(err as Error).message}`);
  }
  let o: { sha256?: unknown; manifest?: Manifest };
  try {
    o = JSON.parse(text);
  } catch {
    throw corrupt(`${path}: not JSON (truncated?)`);
  }
  if (!o.manifest || o.sha256 !== sha256(JSON.stringify(o.manifest))) throw corrupt(`${path}: checksum mismatch`);
  if (o.manifest.format !== FORMAT) throw corrupt(`${path}: format ${String(o.manifest.format)}`);
  return o.manifest;
}
