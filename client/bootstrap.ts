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
import { unanswered } from '../shared/errors.ts';
import { type Connected, connectWorker } from './bootstrap-connect.ts';
import { Credit } from './bootstrap-credit.ts';
import { shardReader } from './bootstrap-shards.ts';
import { type Counters, StatusBook } from './bootstrap-status.ts';
import type { BootEvent, BootOptions, BootResult, BootStatus, BootTotals, WorkerPlatform } from './bootstrap-types.ts';
import { CpuShare } from './cpu-share.ts';
import { GatewayApi } from './gateway-api.ts';
import { type RunnerApp, type RunnerEvent, TaskRunner } from './runner.ts';
import { SchedulerSession } from './session.ts';
import { Worker } from './worker.ts';

export type * from './bootstrap-types.ts';

/** Failures after which the scheduler session is reopened rather than the run given up: no answer. */
const retryable = unanswered;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class WorkerBootstrap {
  /** Kept up to date in place (the page's `window.tabshard`). */
  readonly status: BootStatus;
  private readonly book: StatusBook;
  private readonly api: GatewayApi;
  private readonly cpu: CpuShare;
  private running: Promise<BootResult> | null = null;
  private stopping = false;
  private runner: TaskRunner<DecodedShard> | null = null;
  /** Ends the backoff wait in progress (stop). */
  private wake: (() => void) | null = null;
  private credit: Credit | null = null;

  constructor(
    private readonly platform: WorkerPlatform,
    private readonly opts: BootOptions,
    private readonly onevent: (ev: BootEvent) => void = () => {},
  ) {
    this.book = new StatusBook(() => this.onevent({ type: 'status' }));
    this.status = this.book.status;
    this.api = new GatewayApi(platform.fetch, opts.url.replace(/\/$/, ''));
    this.cpu = new CpuShare({
      share: opts.cpuShare,
      sleep: (ms) => new Promise((resolve) => platform.clock.setTimeout(resolve, ms)),
      onchange: (s) => {
        this.status.restedMs = this.cpu.restedMs;
        if (s.paused) this.book.setState('paused');
        else if (s.restingMs > 0)
          this.book.setState('waiting', `resting ${Math.round(s.restingMs)} ms (CPU use limit)`);
      },
    });
    this.status.cpuShare = this.cpu.share;
  }

  /** Runs the worker until the job is done or `stop()`; the same promise on every call. */
  start(): Promise<BootResult> {
    this.running ??= this.run().catch((err) => {
      this.status.error = message(err);
      this.book.setState('failed');
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
    this.book.changed();
  }

  /** No LEASE until `resume()`; the tasks leased finish (none is abandoned). */
  pause(): void {
    this.status.paused = true;
    this.cpu.pause();
  }

  resume(): void {
    this.status.paused = false;
    this.cpu.resume();
    if (this.status.state === 'paused') this.book.setState('waiting');
  }

  private async run(): Promise<BootResult> {
    const { platform, opts, status, api } = this;
    const job = opts.job ?? (await api.firstJob());
    const info = await api.jobInfo(job);
    status.job = job;
    this.onevent({ type: 'job', job, info });
    this.book.setState('connecting');
    const appInfo = parseAppInfo(info);
    const math = bindApp(appInfo);
    const computing = platform.compute.start(appInfo); // the backend probe runs while the nodes are dialled
    computing.catch(() => {});
    let conn: Connected | null = null;
    try {
      conn = await connectWorker(platform, api, job, opts, (rec) => {
        status.transports[rec.node] = rec.kind;
        if (rec.kind === 'ws') status.fallback = true;
        this.book.changed();
      });
      status.transports = conn.routes;
      this.book.changed();
      const { backend, probes } = await computing;
      status.backend = backend;
      status.probes = probes;
      this.book.changed();
      const shard = shardReader({
        api,
        store: platform.shards,
        compute: platform.compute,
        job,
        version: info.version,
        count: info.shards,
        counts: status,
        onread: () => this.book.changed(),
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
      if (opts.credit !== false) {
        this.credit = new Credit(api, platform.clock, job, status, this.book.changed);
        this.credit.start();
      }
      return await this.sessions(job, info.auditTable, conn, app, backend);
    } finally {
      await this.credit?.close();
      conn?.worker.close();
      platform.compute.close();
    }
  }

  /** Opens scheduler sessions and runs the task loop in each until the job is done or the run stops. */
  private async sessions(
    job: number,
    auditTable: string | undefined,
    conn: Connected,
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
        ontask: (t) => {
          this.book.task(t);
          this.onevent({ type: 'task', times: t });
        },
        onevent: (ev) => {
          if (ev.tasks > lastTasks) {
            lastTasks = ev.tasks;
            backoff = first;
            this.credit?.soon();
          }
          this.book.progress(ev, before, worker.bytes);
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
    if (state === 'stopped') this.book.setState('stopped');
    await this.credit?.read().catch(() => {});
    const totals: BootTotals = { state, inFlight: last?.inFlight ?? 0, ...this.book.counters() };
    return {
      totals,
      bytes: { ...worker.bytes },
      framesSent: started ? worker.framesSent - started.frames : 0,
      wallMs: started ? Math.round(platform.clock.now() - started.at) : 0,
      abandoned: this.book.abandoned,
      reconnects: status.reconnects,
    };
  }

  /** State `reconnecting` for `ms` on the platform's clock (or until `stop()`). */
  private backoff(ms: number, reason: string): Promise<void> {
    this.book.setState('reconnecting', `${reason}; retrying in ${ms / 1000} s`);
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
}
