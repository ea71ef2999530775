/**
 * Garbage-collection time of this process, from `perf_hooks` GC entries: how many collections ran
 * and how long they took, by kind. A server node reports it in STATS (so benchmarks and the
 * console can show what share of a node's time went to the collector); bench code uses it for
 * the worker's side.
 */
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';

export interface GcTotals {
  /** Collections since the monitor started. */
  count: number;
  /** Milliseconds spent in them. */
  ms: number;
  /** Of those, major (mark-compact) collections and their milliseconds. */
  majorCount: number;
  majorMs: number;
}

export interface GcMonitor {
  totals(): GcTotals;
  stop(): void;
}

/** Starts counting GC entries; `totals()` reads the running sums (entries arrive a little after each collection). */
export function startGcMonitor(): GcMonitor {
  const sums: GcTotals = { count: 0, ms: 0, majorCount: 0, majorMs: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
      sums.count++;
      sums.ms += e.duration;
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        sums.majorCount++;
        sums.majorMs += e.duration;
      }
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    totals: () => ({ ...sums, ms: Math.round(sums.ms * 1000) / 1000, majorMs: Math.round(sums.majorMs * 1000) / 1000 }),
    stop: () => obs.disconnect(),
  };
}
