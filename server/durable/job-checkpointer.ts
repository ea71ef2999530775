/**
 * When a job is checkpointed (docs/architecture.md §6): at iteration boundaries under BSP and
 * bounded delay (every `everyIterations` iterations), every `everyMs` under ASP. A checkpoint
 * holds new leases, waits until none is out (a consistent cut: under BSP at a boundary there is
 * none), has every node write its file, and releases. A failed checkpoint is logged; the job
 * goes on and the next one is tried at the next boundary.
 */

import type { CheckpointView } from '../../shared/status.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { Checkpoints } from './checkpoints.ts';
import type { StoredCheckpoint } from './store.ts';

export type CheckpointInfo = CheckpointView;

export interface CheckpointPolicy {
  /** Under BSP and τ: a checkpoint after every this many iterations (default 1). */
  everyIterations?: number;
  /** Under ASP: a checkpoint this often (default 10 000 ms). */
  everyMs?: number;
}

export class JobCheckpointer {
  last: CheckpointInfo | null = null;
  failures = 0;
  private taking = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly everyIterations: number;
  private readonly everyMs: number;

  constructor(
    private readonly job: number,
    private readonly scheduler: Scheduler,
    private readonly tables: () => TableSpec[],
    private readonly checkpoints: Checkpoints,
    policy: CheckpointPolicy,
    private readonly log: (ev: object) => void,
  ) {
    this.everyIterations = policy.everyIterations ?? 1;
    this.everyMs = policy.everyMs ?? 10_000;
  }

  /** The job resumed from this checkpoint: it is the last one (and the next is taken after it). */
  resumedFrom(c: StoredCheckpoint): void {
    this.last = { seq: c.seq, iteration: c.iteration, bytes: c.bytes, ms: 0, at: c.createdAt };
  }

  /** Starts the ASP timer (the tau is read at each tick: a job may switch to ASP and back). */
  start(): void {
    this.timer = setInterval(() => {
      if (this.scheduler.status().tau === null) void this.take();
    }, this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Iteration `i` completed (called synchronously by the scheduler, before it hands out the
   * next lease, so a hold taken here lets nothing through).
   */
  iterationDone(i: number): void {
    const s = this.scheduler.status();
    if (s.tau === null || s.state === 'done' || (i + 1) % this.everyIterations !== 0) return;
    void this.take();
  }

  private async take(): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    const held = this.scheduler.hold();
    let release: (() => void) | null = null;
    try {
      release = await held;
      const iteration = this.scheduler.slowestClock;
      if (this.last?.iteration === iteration && this.scheduler.status().tau !== null) return;
      const heldAt = performance.now();
      let heldMs = 0;
      const { ms, nodesMs, ...c } = await this.checkpoints.take(
        this.job,
        iteration,
        this.scheduler.progress(),
        this.tables(),
        () => {
          // Every node copied its part: the cut is taken, leases go on while the files are written.
          heldMs = Math.round(performance.now() - heldAt);
          release?.();
        },
      );
      this.last = { ...c, ms: heldMs };
      this.log({ ev: 'checkpoint', job: this.job, ...this.last, nodesMs, writeMs: ms });
    } catch (err) {
      this.failures++;
      this.log({ ev: 'checkpoint-failed', job: this.job, error: String(err) });
    } finally {
      release?.();
      this.taking = false;
    }
  }
}
