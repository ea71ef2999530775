/** Whether held-out reports reach a logistic-regression job's target (shared by the logreg benches). */

export interface Target {
  accuracy: number;
  logLoss?: number;
}

/** True when `r` meets both parts of `target`. */
export function meetsTarget(r: { accuracy: number; logLoss: number }, target: Target): boolean {
  return r.accuracy >= target.accuracy && r.logLoss <= (target.logLoss ?? Number.POSITIVE_INFINITY);
}

/** 1-based iteration of the first report that meets `target`, or null. */
export function firstReached(reports: readonly { accuracy: number; logLoss: number }[], target: Target): number | null {
  const i = reports.findIndex((r) => meetsTarget(r, target));
  return i < 0 ? null : i + 1;
}
