/**
 * The scheduler's durable state (docs/architecture.md §6): the jobs of a data directory with
 * their configuration and state, each job's checkpoints with the scheduler progress they hold,
 * the leases granted since the last checkpoint (fenced after a crash) and the held-out metrics.
 * An embedded SQLite database (better-sqlite3) in WAL mode: a commit survives the process being
 * killed (synchronous = NORMAL guards against process crashes; FULL would add power loss).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { JobMetric } from '../../shared/status.ts';
import type { SchedulerProgress } from '../scheduler/types.ts';

export const STORE_FILE = 'tabshard.sqlite';
const SCHEMA_VERSION = 2;

export type StoredJobState = 'running' | 'done' | 'stopped';

export interface StoredJob {
  job: number;
  name: string;
  /** How the job was asked for (cluster.ts JobRequest), as JSON. */
  request: unknown;
  state: StoredJobState;
  createdAt: number;
}

export interface StoredCheckpoint {
  job: number;
  seq: number;
  /** Iterations complete at the cut (the slowest clock). */
  iteration: number;
  /** The checkpoint's folder (its manifest and node files). */
  dir: string;
  bytes: number;
  progress: SchedulerProgress;
  createdAt: number;
}

export class DurableStore {
  private readonly db: Database.Database;
  /** Run before every lease is sent: prepared once. */
  private readonly insertGrant: Database.Statement;

  private constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS jobs (
        job INTEGER PRIMARY KEY, name TEXT NOT NULL, request TEXT NOT NULL,
        state TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS checkpoints (
        job INTEGER NOT NULL, seq INTEGER NOT NULL, iteration INTEGER NOT NULL, dir TEXT NOT NULL,
        bytes INTEGER NOT NULL, progress TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (job, seq));
      CREATE TABLE IF NOT EXISTS grants (
        id INTEGER PRIMARY KEY AUTOINCREMENT, job INTEGER NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS metrics (
        job INTEGER NOT NULL, iteration INTEGER NOT NULL, metric TEXT NOT NULL, PRIMARY KEY (job, iteration));
    `);
    const v = this.meta('schema');
    if (v === undefined) this.setMeta('schema', `${SCHEMA_VERSION}`);
    else if (Number(v) !== SCHEMA_VERSION)
      throw new Error(`${path}: schema version ${v}, this tabshard reads ${SCHEMA_VERSION} (start with --fresh)`);
    this.insertGrant = this.db.prepare('INSERT INTO grants (job, task, attempt) VALUES (?, ?, ?)');
  }

  /** Opens (creating) the store of data directory `dir`. */
  static open(dir: string): DurableStore {
    mkdirSync(dir, { recursive: true });
    return new DurableStore(join(dir, STORE_FILE));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The highest ring version a cluster on this directory installed (0: none yet). */
  get ringVersion(): number {
    return Number(this.meta('ring') ?? 0);
  }

  set ringVersion(version: number) {
    this.db
      .prepare(
        `INSERT INTO meta (key, value) VALUES ('ring', ?)
         ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))`,
      )
      .run(`${version}`);
  }

  /** Forgets every job, checkpoint, grant and metric (starting over); the directory's own values stay. */
  clearJobs(): void {
    this.db.exec('DELETE FROM jobs; DELETE FROM checkpoints; DELETE FROM grants; DELETE FROM metrics;');
  }

  /** A value of the directory's own (the gateway's last port, the ring version), or undefined. */
  meta(key: string): string | undefined {
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return v?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  saveJob(j: Omit<StoredJob, 'createdAt'>): void {
    this.db
      .prepare(
        `INSERT INTO jobs (job, name, request, state, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job) DO UPDATE SET name = excluded.name, request = excluded.request, state = excluded.state`,
      )
      .run(j.job, j.name, JSON.stringify(j.request), j.state, Date.now());
  }

  setJobState(job: number, state: StoredJobState): void {
    this.db.prepare('UPDATE jobs SET state = ? WHERE job = ?').run(state, job);
  }

  jobs(): StoredJob[] {
    const rows = this.db.prepare('SELECT * FROM jobs ORDER BY job').all() as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      job: r.job as number,
      name: r.name as string,
      request: JSON.parse(r.request as string),
      state: r.state as StoredJobState,
      createdAt: r.created_at as number,
    }));
  }

  /** A lease of `task` at `attempt` is about to be granted (kept until a checkpoint after it). */
  granted(job: number, task: number, attempt: number): void {
    this.insertGrant.run(job, task, attempt);
  }

  /** Where the grants recorded so far end: a checkpoint cut here forgets them (`addCheckpoint`). */
  grantsMark(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM grants').get() as { id: number }).id;
  }

  /** [task, highest attempt] of the leases granted since the job's last checkpoint. */
  grants(job: number): Array<[number, number]> {
    const rows = this.db
      .prepare('SELECT task, MAX(attempt) AS attempt FROM grants WHERE job = ? GROUP BY task ORDER BY task')
      .all(job) as Array<{
      task: number;
      attempt: number;
    }>;
    return rows.map((r) => [r.task, r.attempt]);
  }

  /**
   * Records a complete checkpoint (its files and manifest are durable) and forgets the grants up
   * to `mark` (`grantsMark()` at the cut: later ones are not in it), in one transaction.
   */
  addCheckpoint(c: Omit<StoredCheckpoint, 'createdAt'>, mark: number): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO checkpoints (job, seq, iteration, dir, bytes, progress, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(c.job, c.seq, c.iteration, c.dir, c.bytes, JSON.stringify(c.progress), Date.now());
      this.db.prepare('DELETE FROM grants WHERE job = ? AND id <= ?').run(c.job, mark);
    })();
  }

  /** The job's checkpoints, newest first. */
  checkpoints(job: number): StoredCheckpoint[] {
    const rows = this.db.prepare('SELECT * FROM checkpoints WHERE job = ? ORDER BY seq DESC').all(job) as Array<
      Record<string, unknown>
    >;
    return rows.map((r) => ({
      job: r.job as number,
      seq: r.seq as number,
      iteration: r.iteration as number,
      dir: r.dir as string,
      bytes: r.bytes as number,
      progress: JSON.parse(r.progress as string),
      createdAt: r.created_at as number,
    }));
  }

  dropCheckpoint(job: number, seq: number): void {
    this.db.prepare('DELETE FROM checkpoints WHERE job = ? AND seq = ?').run(job, seq);
  }

  saveMetric(job: number, m: JobMetric): void {
    this.db
      .prepare('INSERT OR REPLACE INTO metrics (job, iteration, metric) VALUES (?, ?, ?)')
      .run(job, m.iteration, JSON.stringify(m));
  }

  /** The job's held-out metrics of iterations below `before`, in order (later ones run again). */
  metrics(job: number, before: number): JobMetric[] {
    const rows = this.db
      .prepare('SELECT metric FROM metrics WHERE job = ? AND iteration < ? ORDER BY iteration')
      .all(job, before) as Array<{ metric: string }>;
    return rows.map((r) => JSON.parse(r.metric));
  }
}
