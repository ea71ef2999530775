/**
 * TASK_DONE counts only with the task's pushes applied (PROTOCOL.md §6.3). The worker hands back
 * the receipts the nodes sealed on its pushes' ACKs; the scheduler opens each (a forged or
 * garbled one, or one of another job, task or attempt, refuses the TASK_DONE) and adds up, per
 * table, the keys of distinct frames — (node, table, seq): a frame acknowledged twice (resent
 * after a lost connection, the second time as a duplicate) counts once. Each table the task
 * pushes must come to exactly the keys it pushes: short means a push never applied, over means
 * keys pushed twice under different seqs. Anything else is TS_ERR_TASK_NOT_APPLIED.
 *
 * What this does not see: a duplicate receipt says the frame's (task, seq) was applied before,
 * by whichever attempt sent it first — a re-run confirms its first run's frames, whatever those
 * frames held.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { ReceiptFields } from '../../shared/protocol/receipt.ts';

/** Opens receipts and says what a task pushes; the driver implements it (server/jobs/driver.ts). */
export interface ReceiptChecker {
  /** The receipt's fields; TS_ERR_TASK_NOT_APPLIED unless this cluster sealed it. */
  open(receipt: string): ReceiptFields;
  /** Table id → keys a task pushes to it (every table it pushes). */
  expected(task: { task: number; shard: number; iteration: number }): ReadonlyMap<number, number>;
}

export function checkReceipts(
  job: number,
  task: { task: number; shard: number; iteration: number },
  attempt: number,
  receipts: readonly string[],
  checker: ReceiptChecker,
): void {
  const refuse = (why: string): never => {
    throw new TabshardError('TS_ERR_TASK_NOT_APPLIED', `task ${task.task} attempt ${attempt}: ${why}`);
  };
  const frames = new Map<string, number>();
  const sums = new Map<number, number>();
  for (const s of receipts) {
    const r = checker.open(s);
    if (r.job !== job || r.task !== task.task || r.attempt !== attempt)
      refuse(`a receipt of job ${r.job} task ${r.task} attempt ${r.attempt}`);
    const id = `${r.node}\u0000${r.table}\u0000${r.seq}`;
    const before = frames.get(id);
    if (before === undefined) {
      frames.set(id, r.keys);
      sums.set(r.table, (sums.get(r.table) ?? 0) + r.keys);
    } else if (before !== r.keys) refuse(`two receipts of frame seq ${r.seq} on ${r.node} disagree`);
  }
  const want = checker.expected(task);
  for (const [table, keys] of want) {
    const got = sums.get(table) ?? 0;
    if (got !== keys) refuse(`table ${table}: receipts cover ${got} keys of ${keys}`);
  }
  for (const table of sums.keys()) if (!want.has(table)) refuse(`receipts for table ${table}, which it does not push`);
}
