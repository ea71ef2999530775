/**
 * Runs one training job in the cluster: defines its tables on the server group, owns its
 * scheduler (whose lease expiries fence every node), evaluates the model on the held-out set
 * after each iteration, and audits that every task was applied exactly once.
 *
 * The audit table has one key per task; a worker adds 1 to its task's key under the task's
 * stamp, so the node's at-most-once rule makes the table itself the record: after the job,
 * every key must read exactly 1.
 */

import type { PreparedJob, PushScope } from '../../apps/jobs.ts';
import type { HoldSpec } from '../../shared/aggregate.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { JobInsight, JobMetric } from '../../shared/status.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { CapabilitySigner, TableGrant } from '../auth/capability.ts';
import type { ReceiptKey } from '../auth/receipt.ts';
import type { Checkpoints, UsableCheckpoint } from '../durable/checkpoints.ts';
import { type CheckpointPolicy, JobCheckpointer } from '../durable/job-checkpointer.ts';
import type { DurableStore } from '../durable/store.ts';
import type { ServerManager } from '../manager.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import type { JobConfig } from '../scheduler/types.ts';

/** A job's scheduler settings, and how its app tables aggregate pushes (absent: each applied as it lands). */
export type DriverConfig = Partial<Omit<JobConfig, 'job' | 'shards'>> & {
  /** Hold each iteration's pushes on the nodes and apply one aggregate per key (PROTOCOL.md §6 TABLE `hold`). */
  aggregate?: Omit<HoldSpec, 'tasksPerIteration'>;
};

export type { JobMetric };

export interface AuditResult {
  tasks: number;
  /** Tasks whose audit key reads 0 (never applied), 1 (exactly once), more (applied twice: a bug). */
  missing: number;
  once: number;
  more: number;
}

export const AUDIT_TABLE = 'tasks';

/** A job kept in a data directory: its store, its checkpoints, and where it resumes. */
export interface DriverDurability {
  store: DurableStore;
  checkpoints: Checkpoints;
  policy: CheckpointPolicy;
  /** Resume from this checkpoint (its rows are restored on the nodes by `start`). */
  resume?: UsableCheckpoint;
}

/** What `JobDriver.listen` calls. */
export interface JobListener {
  metric?(m: JobMetric): void;
  log?(ev: object): void;
  /** The job is done and its last evaluation is in. */
  done?(): void;
}

export class JobDriver {
  readonly scheduler: Scheduler;
  readonly metrics: JobMetric[] = [];
  private started = 0;
  /** When the first task was leased (performance.now()): a job's clock starts with its first worker. */
  private firstLease: number | undefined;
  private readonly audit: TableSpec;
  private readonly aggregate: DriverConfig['aggregate'];
  /** Releases of held iterations (CLOCK to every node), one after another. */
  private releasing: Promise<void> = Promise.resolve();
  /** Keys a task of each shard pushes, per app table (counted once, when the first TASK_DONE is checked). */
  private pushSizes: number[][] | null = null;
  /** Push scopes by shard (computed once: the default decodes the shard). */
  private readonly scopeCache = new Map<number, PushScope[]>();
  private evaluating: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<JobListener>();
  readonly checkpointer: JobCheckpointer | null = null;
  /** The app's insight after the last evaluation (the console shows it). */
  private insight: JobInsight | undefined;

  constructor(
    readonly app: PreparedJob,
    private readonly manager: ServerManager,
    config: DriverConfig = {},
    private readonly durable: DriverDurability | null = null,
    /** Signs the capabilities of the job's leases and sessions (a cluster whose nodes check them). */
    private readonly signer: CapabilitySigner | null = null,
    /** Opens the receipts of pushes (nodes with the cluster's admin token seal them): TASK_DONEs are checked. */
    receipts: ReceiptKey | null = null,
  ) {
    this.aggregate = config.aggregate;
    this.audit = {
      job: app.job,
      id: Math.max(...app.tables.map((t: TableSpec) => t.id)) + 1,
      name: AUDIT_TABLE,
      kind: 'dense',
      keySpace: app.shards.length * (config.iterations ?? app.iterations),
      valueLength: 1,
      updater: 'sum',
      params: {},
      init: { kind: 'zeros' },
    };
    this.scheduler = new Scheduler(
      {
        job: app.job,
        name: config.name ?? `spam-${app.app}`,
        app: app.app,
        shards: app.shards.length,
        iterations: config.iterations ?? app.iterations,
        tau: config.tau === undefined ? 0 : config.tau,
        leaseMs: config.leaseMs ?? 4000,
        heartbeatMs: config.heartbeatMs ?? 1000,
        releaseOnClose: config.releaseOnClose,
        eager: config.eager,
        stalenessLr: config.stalenessLr,
        traffic: config.traffic,
        backups: config.backups,
        backupFactor: config.backupFactor,
        backupFloorMs: config.backupFloorMs,
      },
      {
        fence: (task, attempt) => this.fence(task, attempt),
        log: (ev) => this.logged(ev),
        granted: durable ? (task, attempt) => durable.store.granted(app.job, task, attempt) : undefined,
        capabilities: signer ? { sign: (c) => signer.sign(c), tables: (t) => this.grants(t.shard, t.task) } : undefined,
        receipts: receipts ? { open: (s) => receipts.open(s), expected: (t) => this.pushes(t.shard) } : undefined,
      },
    );
    if (durable)
      this.checkpointer = new JobCheckpointer(
        app.job,
        this.scheduler,
        () => this.tables,
        durable.checkpoints,
        durable.policy,
        (ev) => this.logged(ev),
      );
    // Evaluations run one after another; a failed one is logged and the next still runs.
    this.scheduler.onIterationDone = (i) => {
      const at = performance.now();
      if (this.aggregate) {
        // Held pushes: no lease runs until every node applied iteration i's aggregate (CLOCK i + 1,
        // which also publishes under eager SSP); the checkpoint and the evaluation come after it.
        const resume = this.scheduler.pauseGrants();
        const released = this.releasing.then(() => this.release(i + 1));
        this.releasing = released;
        released.then(() => {
          this.checkpointer?.iterationDone(i); // holds the next leases before they resume
          resume();
        });
        this.evaluating = Promise.all([this.evaluating, released])
          .then(() => this.evaluate(i, at))
          .catch((err) => this.logged({ ev: 'evaluate-failed', iteration: i, error: String(err) }));
        return;
      }
      this.checkpointer?.iterationDone(i); // first: it holds the next leases
      // Eager SSP: the servers publish fresh values to subscribers as the slowest clock advances.
      if (this.scheduler.eager)
        this.manager
          .publish(app.job, i + 1)
          .catch((err) => this.logged({ ev: 'publish-failed', clock: i + 1, error: String(err) }));
      this.evaluating = this.evaluating
        .then(() => this.evaluate(i, at))
        .catch((err) => this.logged({ ev: 'evaluate-failed', iteration: i, error: String(err) }));
    };
    this.scheduler.onDone = () => {
      this.checkpointer?.stop();
      durable?.store.setJobState(app.job, 'done');
      this.evaluating.then(() => {
        for (const l of this.listeners) l.done?.();
      });
    };
  }

  /**
   * Adds a listener of held-out metrics, scheduler events (leases, returns, fences, iterations)
   * and the job's end (the CLI and the console listen); returns its removal.
   */
  listen(l: JobListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get tables(): TableSpec[] {
    if (!this.aggregate) return [...this.app.tables, this.audit];
    const tasksPerIteration = this.app.shards.length;
    const hold = { ...this.aggregate, tasksPerIteration };
    // The audit holds too (its sum): a refused attempt's mark is dropped with its other pushes.
    return [
      ...this.app.tables.map((t) => ({ ...t, hold })),
      { ...this.audit, hold: { rule: 'sum' as const, tasksPerIteration } },
    ];
  }

  /**
   * What a task of `shard` may push (its capability's tables, PROTOCOL.md §6.2): each app table
   * in its push scope (a key list is the key set installed on the nodes, id = the shard), and its
   * own key of the audit table.
   */
  private grants(shard: number, task: number): TableGrant[] {
    return [
      ...this.app.tables.map((t, i): TableGrant => {
        const s = this.scopes(shard)[i];
        if (s === 'whole') return { id: t.id };
        return s instanceof Float64Array ? { id: t.id, keys: shard } : { id: t.id, range: [s.begin, s.end] };
      }),
      { id: this.audit.id, range: [task - 1, task] },
    ];
  }

  /** Keys a task of `shard` pushes to each table (what its receipts must cover), the audit's one included. */
  private pushes(shard: number): ReadonlyMap<number, number> {
    this.pushSizes ??= this.app.shards.map((_, i) => {
      const size = (s: PushScope, t: TableSpec) =>
        s === 'whole' ? t.keySpace : s instanceof Float64Array ? s.length : s.end - s.begin;
      return this.scopes(i).map((s, j) => size(s, this.app.tables[j]));
    });
    const sizes = this.pushSizes[shard];
    return new Map([...this.app.tables.map((t, j): [number, number] => [t.id, sizes[j]]), [this.audit.id, 1]]);
  }

  /** Where a task of `shard` pushes in each app table (the job contract's default: tables[0] at the shard's keys). */
  private scopes(shard: number): PushScope[] {
    const hit = this.scopeCache.get(shard);
    if (hit) return hit;
    const s = this.app.pushScopes?.(shard) ?? [
      decodeShard(this.app.shards[shard]).keys,
      ...this.app.tables.slice(1).map((): PushScope => 'whole'),
    ];
    if (s.length !== this.app.tables.length)
      throw new TabshardError(
        'TS_ERR_INVALID_ARGUMENT',
        `${this.app.app}: ${s.length} push scopes for ${this.app.tables.length} tables`,
      );
    this.scopeCache.set(shard, s);
    return s;
  }

  /**
   * Defines the job's tables on every node; when resuming, loads the checkpoint into them and
   * resumes the scheduler at its cut (before any worker is served).
   */
  async start(): Promise<void> {
    for (const t of this.tables) await this.manager.defineTable(t);
    if (this.signer) {
      // The nodes check a task's pushes against its shard's key lists (the capability names them).
      const sets: Promise<void>[] = [];
      for (let i = 0; i < this.app.shards.length; i++)
        this.scopes(i).forEach((s, j) => {
          if (s instanceof Float64Array)
            sets.push(this.manager.defineKeySet(this.app.job, this.app.tables[j].id, i, s));
        });
      await Promise.all(sets);
    }
    const d = this.durable;
    const resume = d?.resume;
    if (d && resume) {
      await d.checkpoints.restore(this.app.job, resume);
      const c = resume.checkpoint;
      this.scheduler.resumeFrom({ progress: resume.manifest.progress, granted: d.store.grants(this.app.job) });
      this.metrics.push(...d.store.metrics(this.app.job, c.iteration));
      this.checkpointer?.resumedFrom(c);
    }
    this.checkpointer?.start();
    this.started = performance.now();
  }

  /** Ends the job for good (its admin stopped it): a restart on the data directory does not resume it. */
  end(): void {
    this.stop();
    this.durable?.store.setJobState(this.app.job, 'stopped');
  }

  /** Stops the job's scheduler and its checkpoints (the cluster is stopping; a restart resumes it). */
  stop(): void {
    this.checkpointer?.stop();
    this.scheduler.stop();
  }

  /** The last evaluation, if any. */
  get latest(): JobMetric | undefined {
    return this.metrics.at(-1);
  }

  /** True once the held-out target (accuracy, and log-loss when the job sets one) was reached. */
  get reached(): boolean {
    const m = this.latest;
    const { accuracy, logLoss } = this.app.target;
    return m !== undefined && m.accuracy >= accuracy && (logLoss === undefined || m.logLoss <= logLoss);
  }

  status() {
    return {
      ...this.scheduler.status(),
      version: this.app.version,
      target: this.app.target,
      reached: this.reached,
      metrics: this.metrics,
      checkpoint: this.checkpointer?.last ?? null,
      about: this.app.about,
      ...(this.insight ? { insight: this.insight } : {}),
      meta: this.app.meta,
      ...(this.app.model ? { model: { ...this.app.model } } : {}),
    };
  }

  /** Answers a query of the model the servers hold now (the app's `query`); TS_ERR_INVALID_ARGUMENT when it has none. */
  async query(q: Record<string, string>): Promise<object> {
    if (!this.app.query)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `job ${this.app.job} (${this.app.app}) answers no queries`);
    return this.app.query((t, keys) => this.manager.pull(this.app.job, t.id, keys), q);
  }

  /** CLOCK `clock` to every node: held tables apply the iterations below it. A failure is logged (what a dead node held is lost). */
  private async release(clock: number): Promise<void> {
    const t0 = performance.now();
    try {
      await this.manager.publish(this.app.job, clock);
      this.logged({ ev: 'released', clock, ms: Math.round(performance.now() - t0) });
    } catch (err) {
      this.logged({ ev: 'release-failed', clock, error: String(err) });
    }
  }

  /** Reads the audit table: how many tasks were applied never, once, more than once. */
  async auditTasks(): Promise<AuditResult> {
    const n = this.audit.keySpace;
    const v = await this.manager.pull(this.app.job, this.audit.id, { begin: 0, end: n });
    const r: AuditResult = { tasks: n, missing: 0, once: 0, more: 0 };
    for (const x of v) {
      if (x === 0) r.missing++;
      else if (x === 1) r.once++;
      else r.more++;
    }
    return r;
  }

  /** Evaluates now (also used at the end of a run); resolves once pending evaluations are done. */
  async settle(): Promise<void> {
    await this.evaluating;
  }

  /** Evaluates the weights after `iteration` completed (at `at`, performance.now()). */
  private async evaluate(iteration: number, at: number): Promise<void> {
    const read = (t: TableSpec, keys: Float64Array | { begin: number; end: number }) =>
      this.manager.pull(this.app.job, t.id, keys);
    const { logLoss, accuracy } = await this.app.evaluate(read);
    if (this.app.insight) this.insight = await this.app.insight(read);
    const m = { iteration, ms: Math.round(at - (this.firstLease ?? this.started)), logLoss, accuracy };
    this.metrics.push(m);
    this.durable?.store.saveMetric(this.app.job, m);
    for (const l of this.listeners) l.metric?.(m);
  }

  private logged(ev: object): void {
    if (this.firstLease === undefined && (ev as { ev?: string }).ev === 'lease') this.firstLease = performance.now();
    for (const l of this.listeners) l.log?.(ev);
  }

  private async fence(task: number, attempt: number): Promise<void> {
    await Promise.all(this.tables.map((t) => this.manager.fence(this.app.job, t.id, task, attempt)));
  }
}
