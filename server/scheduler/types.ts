/**
 * The scheduler's configuration and the JSON-able views it gives the gateway and the console
 * (docs/architecture.md §1 scheduler, §8 compute vs wait time).
 */
import { TabshardError } from '../../shared/errors.ts';
import { MAX_LABEL } from '../../shared/protocol/sched.ts';
import { parseTraffic, type TrafficOptions } from '../../shared/protocol/values.ts';
import type { TaskState } from '../../shared/status.ts';

export type { JobState, JobStatus, TaskState, WorkerStatus } from '../../shared/status.ts';

/** One job (worker group): `iterations` passes over `shards` data shards. */
export interface JobConfig {
  job: number;
  name: string;
  app: string;
  shards: number;
  iterations: number;
  /** Consistency (docs/architecture.md §5): 0 = BSP, k = bounded delay, null = ASP. */
  tau: number | null;
  /** A lease with no heartbeat for this long expires and its task returns to the queue. */
  leaseMs: number;
  /** How often workers heartbeat; must be below `leaseMs`. */
  heartbeatMs: number;
  /** Eager SSP (§5): tell workers the servers publish fresh values as the slowest clock advances. */
  eager?: boolean;
  /** Staleness-aware learning rate (§8): workers scale each push by 1 / (1 + staleness). */
  stalenessLr?: boolean;
  /** How workers encode their pushes and pulls (sent with every task; absent: float32, undeflated). */
  traffic?: TrafficOptions;
  /** Default true: a session's leases return at once when its Conn closes. */
  releaseOnClose?: boolean;
  /** How long a LEASE with nothing runnable is held before it is answered `{wait: 0}`; default 10 s. */
  holdMs?: number;
  /** First delay before retrying a failed fence (doubles up to 30 s); default 500 ms. */
  fenceRetryMs?: number;
  /** Leases one worker may hold or ask for at once (held + LEASEs waiting); default 4. */
  maxLeases?: number;
  /**
   * A lease is returned this long after its grant, heartbeats or not, and a task capability
   * lives this long; default 120 s. Sooner, once tasks have finished: see `overdueFactor`.
   */
  maxLeaseMs?: number;
  /**
   * A lease is overdue (returned at its next heartbeat) once it has run `overdueFactor` × the
   * median time of the job's recent tasks, and at least `overdueFloorMs`; defaults 20 and 10 s.
   */
  overdueFactor?: number;
  overdueFloorMs?: number;
  /**
   * A worker whose lease was taken back as overdue gets no lease for this long (default 60 s)
   * while a worker not benched has a session: a hoarder cannot stall iteration after iteration.
   */
  benchMs?: number;
  /**
   * Backup tasks (docs/architecture.md §8): while LEASEs wait with nothing runnable, a task
   * that has run `backupFactor` × the median recent task (and at least `backupFloorMs`) is also
   * leased to the waiting worker, as its next attempt; the first TASK_DONE counts. Default off;
   * defaults 2 and 250 ms.
   */
  backups?: boolean;
  backupFactor?: number;
  backupFloorMs?: number;
}

/**
 * What a checkpoint keeps of a job's scheduler (docs/architecture.md §6), taken while no lease
 * is out: the tasks done, and the attempts of the others that were ever leased.
 */
export interface SchedulerProgress {
  /** [task, attempt that finished it, worker] of every task done. */
  done: Array<[number, number, number | null]>;
  /** [task, current attempt, leases granted] of every task not done that was ever leased. */
  started: Array<[number, number, number]>;
}

/** Where a scheduler resumes after a restart: a checkpoint's progress and the leases granted since. */
export interface ResumePoint {
  progress: SchedulerProgress;
  /** [task, attempt] of leases granted after the checkpoint (their pushes are not in it). */
  granted: Array<[number, number]>;
}

/** One task as the console and the tests see it. */
export interface TaskRecord {
  task: number;
  shard: number;
  iteration: number;
  state: TaskState;
  /** Current attempt number (0 for the first lease; +1 each time a lease is lost). */
  attempt: number;
  /** Leases granted so far. */
  attempts: number;
  doneAttempt: number | null;
  doneBy: number | null;
  /** Worker holding the current lease, if leased. */
  holder: number | null;
}

const invalid = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `job config: ${why}`);
const isU32 = (x: unknown, min = 0) => Number.isInteger(x) && (x as number) >= min && (x as number) <= 0xffffffff;

/** Checks τ: null (ASP) or an integer ≥ 0. */
export function checkTau(tau: unknown): number | null {
  if (tau === null) return null;
  if (!Number.isInteger(tau) || (tau as number) < 0) throw invalid('tau must be null or an integer ≥ 0');
  return tau as number;
}

/** A job config with its defaults filled in (traffic stays optional: absent is plain float32). */
export type CheckedConfig = Required<Omit<JobConfig, 'traffic'>> & Pick<JobConfig, 'traffic'>;

/** Validates a job config (TS_ERR_INVALID_ARGUMENT) and fills in the defaults. */
export function checkConfig(c: JobConfig): CheckedConfig {
  if (!isU32(c.job)) throw invalid('job must be a u32');
  if (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > MAX_LABEL) throw invalid('name');
  if (typeof c.app !== 'string' || c.app.length > MAX_LABEL) throw invalid('app');
  if (!isU32(c.shards, 1) || !isU32(c.iterations, 1)) throw invalid('shards and iterations must be ≥ 1');
  if (c.shards * c.iterations > 0xffffffff - 1) throw invalid('shards × iterations must fit task ids (u32)');
  if (!isU32(c.leaseMs, 1) || !isU32(c.heartbeatMs, 1) || c.heartbeatMs >= c.leaseMs)
    throw invalid('need 0 < heartbeatMs < leaseMs (integers)');
  const holdMs = c.holdMs ?? 10_000;
  const fenceRetryMs = c.fenceRetryMs ?? 500;
  if (!isU32(holdMs, 1) || !isU32(fenceRetryMs, 1)) throw invalid('holdMs and fenceRetryMs must be ≥ 1');
  const maxLeases = c.maxLeases ?? 4;
  const maxLeaseMs = c.maxLeaseMs ?? 120_000;
  const overdueFactor = c.overdueFactor ?? 20;
  const overdueFloorMs = c.overdueFloorMs ?? 10_000;
  const benchMs = c.benchMs ?? 60_000;
  if (!isU32(maxLeases, 1) || !isU32(maxLeaseMs, 1) || !isU32(overdueFloorMs, 1) || !isU32(benchMs, 0))
    throw invalid('maxLeases, maxLeaseMs and overdueFloorMs must be integers ≥ 1, benchMs ≥ 0');
  if (typeof overdueFactor !== 'number' || !(overdueFactor >= 1) || !Number.isFinite(overdueFactor))
    throw invalid('overdueFactor must be a number ≥ 1');
  const backupFactor = c.backupFactor ?? 2;
  const backupFloorMs = c.backupFloorMs ?? 250;
  if (typeof backupFactor !== 'number' || !(backupFactor >= 1) || !Number.isFinite(backupFactor))
    throw invalid('backupFactor must be a number ≥ 1');
  if (!isU32(backupFloorMs, 1)) throw invalid('backupFloorMs must be an integer ≥ 1');
  if (c.backups !== undefined && typeof c.backups !== 'boolean') throw invalid('backups must be true or false');
  return {
    ...c,
    tau: checkTau(c.tau),
    eager: c.eager ?? false,
    stalenessLr: c.stalenessLr ?? false,
    traffic: parseTraffic(c.traffic, invalid),
    releaseOnClose: c.releaseOnClose ?? true,
    holdMs,
    fenceRetryMs,
    maxLeases,
    maxLeaseMs,
    overdueFactor,
    overdueFloorMs,
    benchMs,
    backups: c.backups ?? false,
    backupFactor,
    backupFloorMs,
  };
}
