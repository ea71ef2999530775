/**
 * What happens to this tab when it is hidden: browsers keep a Web Worker computing in a
 * background tab but throttle the page's own timers (Chrome: at most once a second, and once a
 * minute after five hidden minutes). This records every visibility change, the time spent
 * hidden, the tasks finished while hidden, and how late a 1 s main-thread timer fired while
 * hidden vs visible — the throttling actually observed, shown on the page.
 */

export interface VisibilityRecord {
  hidden: boolean;
  changes: Array<{ at: number; hidden: boolean }>;
  hiddenMs: number;
  tasksWhileHidden: number;
  examplesWhileHidden: number;
  /** Largest extra delay of the 1 s probe timer, in ms. */
  maxTimerLagHiddenMs: number;
  maxTimerLagVisibleMs: number;
}

const PROBE_MS = 1000;

export class VisibilityLog {
  readonly rec: VisibilityRecord;
  private since = performance.now();

  constructor(private readonly onchange: () => void) {
    this.rec = {
      hidden: document.hidden,
      changes: [],
      hiddenMs: 0,
      tasksWhileHidden: 0,
      examplesWhileHidden: 0,
      maxTimerLagHiddenMs: 0,
      maxTimerLagVisibleMs: 0,
    };
    document.addEventListener('visibilitychange', () => {
      const now = performance.now();
      if (this.rec.hidden) this.rec.hiddenMs += now - this.since;
      this.since = now;
      this.rec.hidden = document.hidden;
      this.rec.changes.push({ at: Date.now(), hidden: document.hidden });
      this.onchange();
    });
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      const lag = Math.max(0, now - last - PROBE_MS);
      last = now;
      if (document.hidden) this.rec.maxTimerLagHiddenMs = Math.max(this.rec.maxTimerLagHiddenMs, lag);
      else this.rec.maxTimerLagVisibleMs = Math.max(this.rec.maxTimerLagVisibleMs, lag);
    }, PROBE_MS);
  }

  /** A task finished now. */
  task(examples: number): void {
    if (!document.hidden) return;
    this.rec.tasksWhileHidden++;
    this.rec.examplesWhileHidden += examples;
  }

  /** One line for the page. */
  describe(): string {
    const r = this.rec;
    const hiddenMs = r.hiddenMs + (r.hidden ? performance.now() - this.since : 0);
    if (r.changes.length === 0) return 'visible; no visibility changes yet';
    const hides = r.changes.filter((c) => c.hidden).length;
    const parts = [
      `${r.hidden ? 'hidden now' : 'visible now'}; hidden ${hides}× for ${(hiddenMs / 1000).toFixed(1)} s in all`,
      `${r.tasksWhileHidden} tasks (${r.examplesWhileHidden} examples) done while hidden — the Web Worker keeps computing`,
      `page timers late by up to ${Math.round(r.maxTimerLagHiddenMs)} ms while hidden (${Math.round(r.maxTimerLagVisibleMs)} ms visible)`,
    ];
    return parts.join('; ');
  }
}
