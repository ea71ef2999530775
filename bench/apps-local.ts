/**
 * Any registered application run in ONE process through its contract (apps/contract.ts and
 * apps/job-contract.ts): the job's tables as in-process tables with the real server-side updaters
 * (server/updaters/local-table.ts), every task of an iteration in turn — pull (unless push-only),
 * the worker side's computation, push — and the job side's own evaluation after each iteration.
 * The single-process baseline bench:apps puts beside the distributed run of the same job.
 */
import type { TaskMath, Tf } from '../apps/contract.ts';
import type { PreparedJob, TableRead } from '../apps/job-contract.ts';
import type { Keys } from '../client/worker.ts';
import { LocalTable } from '../server/updaters/local-table.ts';
import { decodeShard } from '../shared/apps/shard.ts';
import type { TableSpec } from '../shared/table.ts';

export interface LocalIteration {
  iteration: number;
  /** Wall time since training started (evaluations included). */
  ms: number;
  accuracy: number;
  logLoss: number;
}

const list = (k: Keys): Float64Array =>
  k instanceof Float64Array ? k : Float64Array.from({ length: k.end - k.begin }, (_, i) => k.begin + i);

/** Runs `iterations` passes of `job` in process; one report per iteration. */
export async function runLocal(
  tf: Tf,
  job: PreparedJob,
  math: TaskMath,
  iterations: number,
): Promise<LocalIteration[]> {
  const shards = job.shards.map((b) => decodeShard(b));
  // The keys each table must hold: every task's, and those the evaluation reads (asked once of a
  // read that answers zeros, as the evaluation's keys do not depend on the values).
  const keys = new Map<string, Set<number>>(job.tables.map((t) => [t.name, new Set<number>()]));
  for (const s of shards) for (const p of math.pulls(s)) for (const k of list(p.keys)) keys.get(p.table)!.add(k);
  const asked: TableRead = async (t, k) => {
    for (const x of list(k)) keys.get(t.name)!.add(x);
    return new Float32Array(list(k).length * t.valueLength);
  };
  await job.evaluate(asked);
  const tables = new Map<string, LocalTable>(
    job.tables.map((t: TableSpec) => [t.name, new LocalTable(t, keys.get(t.name)!)]),
  );
  const read: TableRead = async (t, k) => tables.get(t.name)!.pull(list(k));
  const out: LocalIteration[] = [];
  const t0 = performance.now();
  for (let it = 0; it < iterations; it++) {
    for (const s of shards) {
      const specs = math.pulls(s).map((p) => ({ ...p, list: list(p.keys), table: tables.get(p.table)! }));
      const values = specs.map((p) => (p.pushOnly ? new Float32Array(0) : p.table.pull(p.list)));
      const g = await math.gradient(tf, s, values);
      specs.forEach((p, i) => {
        p.table.push(p.list, g.grads[i]);
      });
    }
    const q = await job.evaluate(read);
    out.push({ iteration: it, ms: performance.now() - t0, ...q });
  }
  return out;
}
