/**
 * The worker bootstrap (docs/workers.md, "One bootstrap"): everything that makes this process a
 * worker of a job, once, for the volunteer's page (web/worker/main.ts, gradients in a Web Worker,
 * shards in IndexedDB) and the headless Node worker (client/node/cli.ts, tfjs in process, shards
 * in memory) alike. What differs is the `WorkerPlatform` passed in (client/bootstrap-types.ts).
 *
 * `start()`: reads the job's description, binds its application, starts the compute (the tfjs
 * backend probe), connects to every server node (client/bootstrap-connect.ts), opens a scheduler
 * session and runs the task loop (client/runner.ts) with shards read ahead from the store or the
 * gateway (client/bootstrap-shards.ts), the CPU share and pause as its gate, and the job's status
 * read now and then for this worker's share of the finished tasks. A session that drops (or
 * cannot be opened: TS_ERR_TRANSPORT_CLOSED, _CONNECT_FAILED, _TIMEOUT) is reopened after a
 * backoff on the platform's clock — 0.5 s, doubling to 10 s, back to 0.5 s after a task is done
 * — showing the resume secret, so the worker keeps its id; totals carry over. It resolves when
 * the job is done (or `stop()` ended the run); it rejects on any other failure (state `failed`).
 *
 * `stop()`: no LEASE after it (a paused gate is released so the loop can end); the tasks already
 * leased finish; then the session, the node connections, the compute and every timer are closed.
 */
import { bindApp, parseAppInfo } from '../apps/workers.ts';
import type { DecodedShard } from '../shared/apps/shard.ts';
import { TabshardError } from '../shared/errors.ts';
import { connectWorker } from './bootstrap-connect.ts';
import { shardReader } from './bootstrap-shards.ts';
import type {
  BootEvent,
  BootOptions,
  BootResult,
  BootState,
  BootStatus,
  BootTotals,
  WorkerPlatform,
} from './bootstrap-types.ts';
import { CpuShare } from './cpu-share.ts';
import { contributionOf, GatewayApi } from './gateway-api.ts';
import { type RunnerApp, type RunnerEvent, TaskRunner } from './runner.ts';
import { SchedulerSession } from './session.ts';
import { type TaskTimes, taskMedians } from './task-times.ts';
import { Worker } from './worker.ts';

export type * from './bootstrap-types.ts';

/** How many recent tasks the status's medians cover. */
const RECENT_TASKS = 100;
/** The contribution is read at most this often, and at least every CREDIT_EVERY_MS while working. */
const CREDIT_MIN_MS = 2000;
const CREDIT_EVERY_MS = 5000;
/** Failures after which the scheduler session is reopened rather than the run given up. */
const RETRY = new Set(['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_CONNECT_FAILED', 'TS_ERR_TIMEOUT']);
const retryable = (err: unknown) => err instanceof TabshardError && RETRY.has(err.code);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

type Counters = Pick<BootStatus, 'tasks' | 'examples' | 'computeMs' | 'waitMs' | 'pulledValues'>;

export class WorkerBootstrap {
  readonly status: BootStatus = {
    state: 'starting',
    transports: {},
    fallback: false,
    tasks: 0,
    examples: 0,
    computeMs: 0,
    waitMs: 0,
    pulledValues: 0,
    bytes: { sent: 0, received: 0 },
    downloads: 0,
    cacheHits: 0,
    cpuShare: 1,
    paused: false,
    inTask: false,
    restedMs: 0,
    reconnects: 0,
  };
  private readonly api: GatewayApi;
  private readonly cpu: CpuShare;
  private running: Promise<BootResult> | null = null;
  private stopping = false;
  private runner: TaskRunner<DecodedShard> | null = null;
  /** Ends the backoff wait in progress (stop). */
  private wake: (() => void) | null = null;
  private creditTimer: unknown = null;
  private credit: Promise<void> | null = null;
  private creditAt = Number.NEGATIVE_INFINITY;
  private readonly recent: TaskTimes[] = [];
  private abandoned = 0;

  constructor(
    private readonly platform: WorkerPlatform,
    private readonly opts: BootOptions,
    private readonly onevent: (ev: BootEvent) => void = () => {},
  ) {
    this.api = new GatewayApi(platform.fetch, opts.url.replace(/\/$/, ''));
    this.cpu = new CpuShare({
      share: opts.cpuShare,
      sleep: (ms) => new Promise((resolve) => platform.clock.setTimeout(resolve, ms)),
      onchange: (s) => {
        this.status.restedMs = this.cpu.restedMs;
        if (s.paused) this.setState('paused');
        else if (s.restingMs > 0) this.setState('waiting', `resting ${Math.round(s.restingMs)} ms (CPU use limit)`);
      },
    });
    this.status.cpuShare = this.cpu.share;
  }

  /** Runs the worker until the job is done or `stop()`; the same promise on every call. */
  start(): Promise<BootResult> {
    this.running ??= this.run().catch((err) => {
      this.status.error = message(err);
      this.setState('failed');
      throw err;
    });
    return this.running;
  }

  /** Ends the run (see the file header); resolves once everything is closed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.runner?.stop();
    this.cpu.resume();
    this.wake?.();
    await this.running?.catch(() => {});
  }

  get cpuShare(): number {
    return this.cpu.share;
  }

  /** The fraction of time computing allowed (clamped to [0.05, 1]); applies from the next task. */
  set cpuShare(f: number) {
    this.cpu.share = f;
    this.status.cpuShare = this.cpu.share;
    this.changed();
  }

  /** No LEASE until `resume()`; the tasks leased finish (none is abandoned). */
  pause(): void {
    this.status.paused = true;
    this.cpu.pause();
  }

  resume(): void {
    this.status.paused = false;
    this.cpu.resume();
    if (this.status.state === 'paused') this.setState('waiting');
  }

  private async run(): Promise<BootResult> {
    const { platform, opts, status, api } = this;
    const job = opts.job ?? (await api.firstJob());
    const info = await api.jobInfo(job);
    status.job = job;
    this.onevent({ type: 'job', job, info });
    this.setState('connecting');
    const appInfo = parseAppInfo(info);
    const math = bindApp(appInfo);
    const computing = platform.compute.start(appInfo); // the backend probe runs while the nodes are dialled
    computing.catch(() => {});
    let conn: Awaited<ReturnType<typeof connectWorker>> | null = null;
    try {
      conn = await connectWorker(platform, api, job, opts, (rec) => {
        status.transports[rec.node] = rec.kind;
        if (rec.kind === 'ws') status.fallback = true;
        this.changed();
      });
      status.transports = conn.routes;
      this.changed();
      const { backend, probes } = await computing;
      status.backend = backend;
      status.probes = probes;
      this.changed();
      const shard = shardReader({
        api,
        store: platform.shards,
        compute: platform.compute,
        job,
        version: info.version,
        count: info.shards,
        counts: status,
        onread: () => this.changed(),
      });
      const app: RunnerApp<DecodedShard> = {
        shard,
        pulls: (s) => math.pulls(s),
        gradient: async (s, values) => {
          const t0 = performance.now();
          const g = await platform.compute.gradient(s, values);
          this.cpu.computed(performance.now() - t0);
          return g;
        },
      };
      this.scheduleCredit(job);
      return await this.sessions(job, info.auditTable, conn, app, backend);
    } finally {
      platform.clock.clearTimeout(this.creditTimer);
      this.creditTimer = null;
      await this.credit;
      conn?.worker.close();
      platform.compute.close();
    }
  }

  /** Opens scheduler sessions and runs the task loop in each until the job is done or the run stops. */
  private async sessions(
    job: number,
    auditTable: string | undefined,
    conn: Awaited<ReturnType<typeof connectWorker>>,
    app: RunnerApp<DecodedShard>,
    backend: string,
  ): Promise<BootResult> {
    const { status, platform, opts } = this;
    const { worker, ws } = conn;
    const first = opts.backoff?.firstMs ?? 500;
    const max = opts.backoff?.maxMs ?? 10_000;
    let backoff = first;
    /** The resume secret of the last session's worker id (in memory only: a new run is a new worker). */
    let resume: string | undefined;
    /** Totals of earlier sessions (the runner counts per session). */
    const before: Counters = { tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
    let started: { at: number; frames: number } | null = null;
    let last: RunnerEvent | null = null;
    while (!this.stopping) {
      let session: SchedulerSession;
      try {
        session = await SchedulerSession.open(await ws.dial(this.api.sessionUrl(job)), {
          agent: platform.agent,
          transport: Worker.routeSummary(status.transports),
          // The scheduler keeps an id only for the session that shows its resume secret.
          ...(status.worker !== undefined && resume !== undefined ? { worker: status.worker, resume } : {}),
        });
      } catch (err) {
        if (this.stopping) break;
        if (!retryable(err)) throw err;
        await this.backoff(backoff, `could not open the scheduler session (${message(err)})`);
        backoff = Math.min(backoff * 2, max);
        continue;
      }
      status.worker = session.worker;
      resume = session.resume;
      if (started === null) {
        started = { at: platform.clock.now(), frames: worker.framesSent };
        const { transports, routes } = conn;
        this.onevent({ type: 'connected', job, worker: session.worker, backend, transports, routes });
      } else this.onevent({ type: 'reconnected', worker: session.worker, reconnects: status.reconnects });
      let lastTasks = 0;
      const runner = new TaskRunner<DecodedShard>({
        worker,
        session,
        auditTable,
        app,
        slowdown: opts.slowdown,
        stall: opts.stall,
        prefetch: opts.prefetch,
        gate: this.cpu.gate,
        ontask: (t) => this.task(t),
        onevent: (ev) => {
          if (ev.tasks > lastTasks) {
            lastTasks = ev.tasks;
            backoff = first;
            this.creditSoon(job);
          }
          this.progress(ev, before, worker);
        },
      });
      this.runner = runner;
      if (this.stopping) runner.stop();
      try {
        last = await runner.run();
        session.close();
        break;
      } catch (err) {
        session.close();
        runner.closeSubscriptions();
        if (this.stopping) break; // the run ends as stopped: nothing to reconnect for
        if (!retryable(err)) throw err;
        for (const k of Object.keys(before) as Array<keyof Counters>) before[k] = status[k];
        status.reconnects++;
        await this.backoff(backoff, `the scheduler connection dropped (${message(err)})`);
        backoff = Math.min(backoff * 2, max);
      } finally {
        this.runner = null;
      }
    }
    const state = last?.state === 'done' ? 'done' : 'stopped';
    if (state === 'stopped') this.setState('stopped');
    if (opts.credit !== false) await this.refreshCredit(job).catch(() => {});
    const totals: BootTotals = { state, inFlight: last?.inFlight ?? 0, ...this.counters() };
    return {
      totals,
      bytes: { ...worker.bytes },
      framesSent: started ? worker.framesSent - started.frames : 0,
      wallMs: started ? Math.round(platform.clock.now() - started.at) : 0,
      abandoned: this.abandoned,
      reconnects: status.reconnects,
    };
  }

  /** A runner event: the totals over every session, the bytes, the state. */
  private progress(ev: RunnerEvent, before: Counters, worker: Worker): void {
    const s = this.status;
    s.inTask = ev.inFlight > 0;
    s.tasks = before.tasks + ev.tasks;
    s.examples = before.examples + ev.examples;
    s.computeMs = before.computeMs + ev.computeMs;
    s.waitMs = before.waitMs + ev.waitMs;
    s.pulledValues = before.pulledValues + ev.pulledValues;
    const b = worker.bytes;
    s.bytes = { sent: b.pushed + b.requested, received: b.pulled + b.published };
    if (ev.state === 'done') this.setState('done');
    else if (ev.state === 'stopped') this.setState('stopped');
    else if (ev.state === 'waiting') this.setState('waiting', ev.lease ? undefined : 'asking the scheduler for a task');
    else this.setState('working', ev.state);
  }

  private task(t: TaskTimes): void {
    if (t.abandoned) this.abandoned++;
    else {
      this.status.lastTask = t;
      this.recent.push(t);
      if (this.recent.length > RECENT_TASKS) this.recent.shift();
      this.status.taskMedians = taskMedians(this.recent);
    }
    this.onevent({ type: 'task', times: t });
  }

  private counters(): Counters {
    const { tasks, examples, computeMs, waitMs, pulledValues } = this.status;
    return { tasks, examples, computeMs, waitMs, pulledValues };
  }

  /** State `reconnecting` for `ms` on the platform's clock (or until `stop()`). */
  private backoff(ms: number, reason: string): Promise<void> {
    this.setState('reconnecting', `${reason}; retrying in ${ms / 1000} s`);
    return new Promise((resolve) => {
      const clock = this.platform.clock;
      const timer = clock.setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clock.clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      this.onevent({ type: 'dropped', reason, retryInMs: ms });
    });
  }

  private scheduleCredit(job: number): void {
    if (this.opts.credit === false) return;
    const tick = () => {
      this.creditTimer = this.platform.clock.setTimeout(tick, CREDIT_EVERY_MS);
      this.creditSoon(job);
    };
    this.creditTimer = this.platform.clock.setTimeout(tick, CREDIT_EVERY_MS);
  }

  /** Reads the contribution unless it was read less than CREDIT_MIN_MS ago (or is being read). */
  private creditSoon(job: number): void {
    const now = this.platform.clock.now();
    if (this.opts.credit === false || this.credit || now - this.creditAt < CREDIT_MIN_MS) return;
    this.creditAt = now;
    this.credit = this.refreshCredit(job)
      .catch(() => {})
      .finally(() => {
        this.credit = null;
      });
  }

  private async refreshCredit(job: number): Promise<void> {
    this.status.contribution = contributionOf(await this.api.status(job), this.status.worker);
    this.changed();
  }

  private setState(state: BootState, step?: string): void {
    const s = this.status;
    const final = state === 'done' || state === 'stopped' || state === 'failed';
    if (final || state === 'reconnecting') s.inTask = false;
    // A pause wins over what the loop reports until the volunteer resumes.
    if (s.paused && !final && state !== 'reconnecting') {
      step = s.inTask ? 'finishing the current task' : 'no new tasks until you resume';
      state = 'paused';
    }
    s.state = state;
    s.step = step;
    this.changed();
  }

  private changed(): void {
    this.onevent({ type: 'status' });
  }
}
