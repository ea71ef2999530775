/**
 * bench:browser (part 3) — what one task costs a browser tab: one Chromium tab alone trains the
 * demo job (`tabshard start`: 3 server nodes, spam LR, 16 shards, BSP) over WebRTC; after `--tasks`
 * tasks (the first iteration's warm-up included), the page's own per-task medians
 * (`window.tabshard.taskMedians`, client/task-times.ts) are read: pull, compute (the tfjs gradient
 * in its Web Worker), push, the whole cycle, frames. The line's `cycle_over_compute` is the
 * issue's bar: a task (pull + gradient + push of one spam shard) at most 3× its gradient time.
 *
 *   node --import tsx bench/browser/task.ts [--tasks 96]
 */
import { parseArgs } from 'node:util';
import { tabTasks } from './tab-tasks.ts';

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '96' } } });
const s = await tabTasks(['--iterations', '100'], Number(values.tasks));
const m = s.taskMedians ?? {};
console.log(
  JSON.stringify({
    bench: 'browser-task',
    tasks: s.tasks,
    transports: s.transports,
    medians: m,
    cycle_over_compute: Number((m.cycleMs / m.computeMs).toFixed(2)),
  }),
);
