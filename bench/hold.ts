/**
 * bench:hold — what holding an iteration's pushes costs on one node (PROTOCOL.md §6 TABLE
 * `hold`): per rule, a sparse table takes one iteration of the demo job's shape — `--pushes`
 * task pushes of `--keys` keys each, drawn from a universe of `--universe` keys (so a key is in
 * about pushes·keys/universe of them) — then CLOCK releases it. Against the same pushes applied
 * as they land (`apply`): the time to take the pushes, the release's time, and the bytes held
 * at the peak (the copies' own size, and the heap's growth). Median of `--repeats`; one JSON line
 * per rule.
 *
 *   npm run bench:hold [-- --pushes 16 --keys 13000 --universe 60000 --repeats 5]
 */
import { parseArgs } from 'node:util';
import { median } from '../client/task-times.ts';
import { Table } from '../server/node/table.ts';
import { tableSpec } from '../server/node/testkit.ts';
import type { HoldSpec } from '../shared/aggregate.ts';
import { createRng } from '../shared/rng.ts';

const { values } = parseArgs({
  options: {
    pushes: { type: 'string', default: '16' },
    keys: { type: 'string', default: '13000' },
    universe: { type: 'string', default: '60000' },
    repeats: { type: 'string', default: '5' },
  },
});
const P = Number(values.pushes);
const K = Number(values.keys);
const U = Number(values.universe);
const rng = createRng(7);
const pushes = Array.from({ length: P }, () => {
  const set = new Set<number>();
  while (set.size < K) set.add(rng.int(U));
  const keys = Float64Array.from([...set].sort((a, b) => a - b));
  return { keys, values: Float32Array.from(keys, () => rng.next() - 0.5) };
});

const rules: Array<[string, HoldSpec | null]> = [
  ['apply', null],
  ['sum', { rule: 'sum', tasksPerIteration: P }],
  ['trimmed-mean', { rule: 'trimmed-mean', trim: 0.2, tasksPerIteration: P }],
  ['median', { rule: 'median', tasksPerIteration: P }],
  ['centered-clip', { rule: 'centered-clip', clip: 0.5, tasksPerIteration: P }],
];

for (const [name, hold] of rules) {
  const take: number[] = [];
  const release: number[] = [];
  const held: number[] = [];
  const heap: number[] = [];
  for (let r = 0; r < Number(values.repeats); r++) {
    const t = new Table({ ...tableSpec(1, 'w', 'sparse', 2 ** 40), ...(hold ? { hold } : {}) });
    (globalThis as { gc?: () => void }).gc?.();
    const h0 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    for (let i = 0; i < pushes.length; i++)
      t.push({ kind: 'list', keys: pushes[i].keys }, pushes[i].values, { worker: 1, task: i + 1, attempt: 0, seq: 0 });
    const t1 = performance.now();
    held.push(t.stats().held?.bytes ?? 0);
    heap.push(process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - h0);
    t.release(1);
    release.push(performance.now() - t1);
    take.push(t1 - t0);
  }
  console.log(
    JSON.stringify({
      bench: 'hold',
      rule: name,
      pushes: P,
      keysPerPush: K,
      universe: U,
      takeMs: +median(take).toFixed(2),
      releaseMs: +median(release).toFixed(2),
      heldBytes: median(held),
      heapGrowthBytes: median(heap),
    }),
  );
}
