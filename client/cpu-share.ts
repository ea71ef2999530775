/**
 * The volunteer's say over their machine: a CPU share and a pause, as the TaskRunner's `gate`.
 * With share f (0 < f ≤ 1), after a task that computed for c ms the next task starts only after
 * resting c·(1−f)/f ms, so over time the tab computes about a fraction f of the wall time. A
 * pause holds the next task (the current one finishes, so no lease is abandoned) until resume.
 * Time is injected so tests drive it without sleeping.
 */

export interface CpuShareOptions {
  /** Fraction of time computing, (0, 1]; default 1. */
  share?: number;
  /** Sleeps `ms` (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** Called when the gate starts or stops holding the next task (for the page's state). */
  onchange?: (s: { paused: boolean; restingMs: number }) => void;
}

export const MIN_SHARE = 0.05;

export class CpuShare {
  private f: number;
  private lastComputeMs = 0;
  private paused = false;
  private resumed: Array<() => void> = [];
  private readonly sleep: (ms: number) => Promise<void>;
  /** Total time rested because of the share. */
  restedMs = 0;

  constructor(private readonly opts: CpuShareOptions = {}) {
    this.f = CpuShare.check(opts.share ?? 1);
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  static check(f: number): number {
    if (!Number.isFinite(f)) return 1;
    return Math.min(1, Math.max(MIN_SHARE, f));
  }

  get share(): number {
    return this.f;
  }

  set share(f: number) {
    this.f = CpuShare.check(f);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Records the compute time of the task just finished. */
  computed(ms: number): void {
    this.lastComputeMs = Math.max(0, ms);
  }

  /** The rest owed before the next task, from the last task's compute time and the share. */
  restMs(): number {
    return (this.lastComputeMs * (1 - this.f)) / this.f;
  }

  pause(): void {
    this.paused = true;
    this.opts.onchange?.({ paused: true, restingMs: 0 });
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.opts.onchange?.({ paused: false, restingMs: 0 });
    for (const r of this.resumed.splice(0)) r();
  }

  /** The TaskRunner's gate: resolves when the next task may start. */
  readonly gate = async (): Promise<void> => {
    const rest = this.restMs();
    this.lastComputeMs = 0;
    if (rest > 0) {
      this.opts.onchange?.({ paused: this.paused, restingMs: rest });
      await this.sleep(rest);
      this.restedMs += rest;
    }
    while (this.paused) await new Promise<void>((r) => this.resumed.push(r));
    if (rest > 0) this.opts.onchange?.({ paused: false, restingMs: 0 });
  };
}
