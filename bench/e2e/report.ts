/**
 * The arithmetic of bench:e2e (bench/e2e/run.ts), apart from its processes so it is tested on its
 * own: the baseline's time to a distributed run's final log-loss, the ratio, the per-task medians
 * pooled over a run's workers, and the summary over repeats.
 */
import { median, type TaskTimes, TIME_FIELDS, taskMedians } from '../../client/task-times.ts';

/** One iteration of the single-process baseline (bench/baseline-logreg.ts's JSON line). */
export interface BaselinePoint {
  iteration: number;
  /** Wall time since its training started (held-out evaluations included). */
  ms: number;
  logLoss: number;
  accuracy: number;
}

/** What the baseline needed to reach `logLoss`: the first iteration at or below it, and its full time. */
export function baselineTo(points: readonly BaselinePoint[], logLoss: number) {
  const hit = points.find((p) => p.logLoss <= logLoss);
  const last = points.at(-1);
  return {
    /** ms to the first iteration at or below `logLoss`; null when no iteration got there (the distributed run did better). */
    msToSame: hit?.ms ?? null,
    iterationToSame: hit?.iteration ?? null,
    ms: last?.ms ?? null,
    finalLogLoss: last?.logLoss ?? null,
  };
}

/**
 * A distributed run's wall time over the baseline's time to the same log-loss (its full time
 * when it never got there, which flatters the distributed run: `reached` says which).
 */
export function ratio(wallMs: number, base: ReturnType<typeof baselineTo>) {
  const denom = base.msToSame ?? base.ms;
  return { ratio: denom ? +(wallMs / denom).toFixed(3) : null, reached: base.msToSame !== null };
}

/** The per-task medians over every task of every worker of one run. */
export function pooledMedians(perWorker: readonly TaskTimes[][]) {
  return taskMedians(perWorker.flat());
}

/** One run of the distributed job, as the summary needs it. */
export interface RunRow {
  repeat: number;
  workers: number;
  prefetch: number;
  wallMs: number;
  ratio: number | null;
  finalLogLoss: number;
  medians: Record<string, number | null>;
}

/**
 * Medians over repeats per (workers, prefetch); the overlap's effect and 2 workers against 1 as
 * ratios paired by repeat; whether the lead's targets hold.
 */
export function summarize(rows: readonly RunRow[], target = { ratio: 1.3 }) {
  const keys = [...new Set(rows.map((r) => `${r.workers}/${r.prefetch}`))];
  const groups = keys.map((k) => {
    const rs = rows.filter((r) => `${r.workers}/${r.prefetch}` === k);
    const med = (f: (r: RunRow) => number | null | undefined, digits = 2) => {
      const xs = rs.map(f).filter((x): x is number => typeof x === 'number');
      return xs.length ? +median(xs).toFixed(digits) : null;
    };
    return {
      workers: rs[0].workers,
      prefetch: rs[0].prefetch,
      runs: rs.length,
      wallMs: med((r) => r.wallMs),
      ratio: med((r) => r.ratio),
      finalLogLoss: med((r) => r.finalLogLoss, 4),
      task: Object.fromEntries(TIME_FIELDS.map((f) => [f, med((r) => r.medians[f])])),
    };
  });
  // Paired within a repeat (the same stretch of a noisy machine): ratios, then their median.
  const paired = (
    a: (r: RunRow) => boolean,
    b: (r: RunRow) => boolean,
    f: (r: RunRow) => number | null | undefined,
  ) => {
    const xs: number[] = [];
    for (const x of rows.filter(a)) {
      const y = rows.find((r) => r.repeat === x.repeat && b(r));
      const fx = f(x);
      const fy = y && f(y);
      if (typeof fx === 'number' && typeof fy === 'number' && fy > 0) xs.push(fx / fy);
    }
    return xs.length ? +median(xs).toFixed(3) : null;
  };
  const workerCounts = [...new Set(rows.map((r) => r.workers))];
  const prefetchSettings = [...new Set(rows.map((r) => r.prefetch))];
  /** Per worker count: prefetch 1's wall time and per-task cycle over prefetch 0's (< 1: the overlap is faster). */
  const overlap =
    prefetchSettings.includes(0) && prefetchSettings.includes(1)
      ? workerCounts.map((workers) => {
          const at = (p: number) => (r: RunRow) => r.workers === workers && r.prefetch === p;
          return {
            workers,
            wall: paired(at(1), at(0), (r) => r.wallMs),
            cycle: paired(at(1), at(0), (r) => r.medians.cycleMs),
          };
        })
      : [];
  const checks = prefetchSettings.map((prefetch) => {
    const one = groups.find((g) => g.workers === 1 && g.prefetch === prefetch);
    const at = (w: number) => (r: RunRow) => r.workers === w && r.prefetch === prefetch;
    const twoOverOne = paired(at(2), at(1), (r) => r.wallMs);
    return {
      prefetch,
      ratioAt1: one?.ratio ?? null,
      ratioMet: one?.ratio != null ? one.ratio <= target.ratio : null,
      /** 2 workers' wall time over 1 worker's, paired by repeat. */
      twoOverOne,
      twoNotSlower: twoOverOne === null ? null : twoOverOne <= 1,
    };
  });
  return { groups, overlap, target: { ratio: target.ratio, twoWorkersNotSlower: true }, checks };
}
