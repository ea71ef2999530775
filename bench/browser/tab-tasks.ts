/**
 * One Chromium tab alone on a `tabshard start` cluster: it trains until it has done `tasks` tasks,
 * then its status (`window.tabshard`: tasks, backend, transports and its own per-task medians,
 * client/task-times.ts) is read and the cluster stopped. Shared by bench:browser's task part and
 * bench:cnn-step.
 */
import { Harness } from '../../e2e/harness.ts';

/** What the benchmarks read of the worker page's `window.tabshard`. */
export interface TabTasks {
  tasks: number;
  backend?: string;
  transports?: Record<string, string>;
  taskMedians?: Record<string, number>;
}

/** Runs one tab on a cluster started with `startArgs` until it has done `tasks` tasks. */
export async function tabTasks(startArgs: string[], tasks: number): Promise<TabTasks> {
  const h = await Harness.start({ startArgs });
  try {
    const page = await h.openPage({ path: '/?job=1' });
    await page.waitForFunction(
      (n) => ((window as unknown as { tabshard?: TabTasks }).tabshard?.tasks ?? 0) >= n,
      tasks,
      {
        timeout: 300_000,
      },
    );
    return await page.evaluate(() => (window as unknown as { tabshard: TabTasks }).tabshard);
  } finally {
    await h.stop();
  }
}
