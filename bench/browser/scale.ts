/**
 * bench:scale — many worker-page tabs (default 16) in one headless Chromium join one job (the spam
 * logistic regression, with enough iterations that it cannot end during the run) on this 2-core
 * machine. Checks that every tab gets a scheduler worker id and completes at least one task
 * within `--deadline-s`, then measures a `--window-s` steady window: tasks/s over the job, tasks
 * per tab, memory (Chromium's PSS summed over its process tree; the cluster's process group's RSS
 * and PSS) and CPU. Whether every tab's connections are WebRTC data channels (no fallback).
 *
 * JSON lines: `scale-tab` (one per tab), `scale-memory` (samples), `scale` (summary, `ok`).
 * Exit code 1 when a tab did not join or make progress in time.
 *
 *   npm run bench:scale [-- --tabs 16 --nodes 3 --window-s 30 --deadline-s 150]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { Harness, listProcesses, type ProcessMemory, processTree } from '../../e2e/harness.ts';

const { values } = parseArgs({
  options: {
    tabs: { type: 'string', default: '16' },
    nodes: { type: 'string', default: '3' },
    iterations: { type: 'string', default: '100000' },
    'window-s': { type: 'string', default: '30' },
    'deadline-s': { type: 'string', default: '150' },
    'own-context': { type: 'boolean', default: false },
  },
});
const nTabs = Number(values.tabs);
const windowMs = Number(values['window-s']) * 1000;
const deadlineMs = Number(values['deadline-s']) * 1000;

interface TabStatus {
  state: string;
  worker?: number;
  backend?: string;
  transports: Record<string, string>;
  fallback: boolean;
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  error?: string;
}
interface JobStatus {
  state: string;
  iterationsDone: number;
  tasks: { total: number; done: number };
  reassignments: number;
  workers: Array<{ worker: number; transport: string; connected: boolean; tasksDone: number; examplesPerSec: number }>;
}

const tab = (p: Page) => p.evaluate(() => (window as unknown as { tabshard: TabStatus }).tabshard);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const TICK_MS = 1000 / 100; // USER_HZ

/** CPU seconds (user + system) of the given processes so far; the whole machine's busy/total jiffies. */
function cpuSeconds(pids: Set<number>): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime stime (fields 14, 15)
    } catch {
      // exited
    }
  }
  return (ticks * TICK_MS) / 1000;
}
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
/**
 * RSS (kB) of the cluster's processes by role: `start` (the `tabshard start` process: gateway,
 * manager, schedulers), `nodes` (server-node processes), `esbuild` (the gateway's bundler service).
 */
function byRole(m: ProcessMemory): Record<string, number> {
  const out: Record<string, number> = { start: 0, nodes: 0, esbuild: 0 };
  for (const p of m.each) {
    const role = p.pid === h.clusterPid ? 'start' : p.comm === 'esbuild' ? 'esbuild' : 'nodes';
    out[role] = (out[role] ?? 0) + p.rssKb;
  }
  return out;
}
/** PSS (kB) of Chromium's processes by type: browser, renderer, gpu-process, utility:<sub-type>. */
function byChromiumType(m: ProcessMemory): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of m.each) {
    let type = 'browser';
    try {
      const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split(/[\0 ]/); // a child's title is one string
      const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
      const t = arg('type');
      if (t) type = t === 'utility' ? `utility:${(arg('utility-sub-type') ?? '?').split('.').at(-1)}` : t;
    } catch {
      continue; // exited
    }
    out[type] = (out[type] ?? 0) + p.pssKb;
  }
  return out;
}
const mb = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v / 1024)]));
/** Per key, the median over samples, in MB. */
const medianBy = (rs: Array<Record<string, number>>) =>
  Object.fromEntries(
    [...new Set(rs.flatMap((r) => Object.keys(r)))].map((k) => [k, round(median(rs.map((r) => r[k] ?? 0)) / 1024)]),
  );
const groupPids = (pgrp: number | undefined) =>
  new Set(
    listProcesses()
      .filter((p) => p.pgrp === pgrp)
      .map((p) => p.pid),
  );

const h = await Harness.start({
  nodes: Number(values.nodes),
  startArgs: ['--iterations', values.iterations],
  startTimeoutMs: 60_000,
});
let ok = false;
try {
  const idle = h.memory();
  console.log(
    JSON.stringify({
      bench: 'scale-memory',
      at: 'before-tabs',
      browser_pss_mb: round(idle.browser.pssKb / 1024),
      cluster_rss_mb: round(idle.cluster.rssKb / 1024),
      cluster_pss_mb: round(idle.cluster.pssKb / 1024),
    }),
  );
  const t0 = performance.now();
  const deadline = t0 + deadlineMs;
  const pages = await h.openPages(nTabs, { path: '/?job=1', ownContext: values['own-context'] });
  const opened = performance.now() - t0;

  // Poll every tab until all have a worker id and a finished task, or the deadline passes.
  const joinedAt: Array<number | null> = pages.map(() => null);
  const firstTaskAt: Array<number | null> = pages.map(() => null);
  let errors: string[] = [];
  while (performance.now() < deadline) {
    const st = await Promise.all(pages.map(tab));
    const now = performance.now() - t0;
    st.forEach((s, i) => {
      if (s.worker !== undefined && joinedAt[i] === null) joinedAt[i] = now;
      if (s.tasks >= 1 && firstTaskAt[i] === null) firstTaskAt[i] = now;
    });
    errors = st.flatMap((s, i) => (s.error ? [`tab ${i}: ${s.error}`] : []));
    if (errors.length || firstTaskAt.every((x) => x !== null)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const joined = joinedAt.filter((x) => x !== null).length;
  const progressed = firstTaskAt.filter((x) => x !== null).length;
  const allJoinedMs = joined === nTabs ? Math.max(...(joinedAt as number[])) : null;
  const allProgressedMs = progressed === nTabs ? Math.max(...(firstTaskAt as number[])) : null;

  // Steady window: tasks/s from the scheduler's done count; memory sampled every 2 s.
  const browserPids = processTree(h.browserPid);
  const clusterPids = groupPids(h.clusterPid);
  const before = await h.api<JobStatus>('/api/jobs/1');
  const tabsBefore = await Promise.all(pages.map(tab));
  const cpu0 = { browser: cpuSeconds(browserPids), cluster: cpuSeconds(clusterPids), machine: machineCpu() };
  const w0 = performance.now();
  const samples: Array<{
    browserPss: number;
    clusterRss: number;
    clusterPss: number;
    roles: Record<string, number>;
    types: Record<string, number>;
  }> = [];
  while (allProgressedMs !== null && performance.now() - w0 < windowMs) {
    await new Promise((r) => setTimeout(r, 2000));
    const m = h.memory();
    samples.push({
      browserPss: m.browser.pssKb,
      clusterRss: m.cluster.rssKb,
      clusterPss: m.cluster.pssKb,
      roles: byRole(m.cluster),
      types: byChromiumType(m.browser),
    });
    console.log(
      JSON.stringify({
        bench: 'scale-memory',
        at_s: round((performance.now() - t0) / 1000),
        browser_pss_mb: round(m.browser.pssKb / 1024),
        browser_processes: m.browser.processes,
        cluster_rss_mb: round(m.cluster.rssKb / 1024),
        cluster_pss_mb: round(m.cluster.pssKb / 1024),
        browser_pss_mb_by_type: mb(byChromiumType(m.browser)),
        cluster_rss_mb_by_role: mb(byRole(m.cluster)),
      }),
    );
  }
  const windowS = (performance.now() - w0) / 1000;
  const cpu1 = { browser: cpuSeconds(browserPids), cluster: cpuSeconds(clusterPids), machine: machineCpu() };
  const after = await h.api<JobStatus>('/api/jobs/1');
  const tabs = await Promise.all(pages.map(tab));

  const webrtcEverywhere = tabs.every(
    (s) =>
      !s.fallback && Object.keys(s.transports).length > 0 && Object.values(s.transports).every((k) => k === 'webrtc'),
  );
  tabs.forEach((s, i) => {
    console.log(
      JSON.stringify({
        bench: 'scale-tab',
        tab: i,
        worker: s.worker ?? null,
        state: s.state,
        backend: s.backend ?? null,
        transports: s.transports,
        fallback: s.fallback,
        joined_ms: joinedAt[i] === null ? null : Math.round(joinedAt[i]!),
        first_task_ms: firstTaskAt[i] === null ? null : Math.round(firstTaskAt[i]!),
        tasks: s.tasks,
        tasks_in_window: s.tasks - tabsBefore[i].tasks,
        examples: s.examples,
        compute_share: s.computeMs + s.waitMs > 0 ? round(s.computeMs / (s.computeMs + s.waitMs), 3) : null,
        error: s.error ?? null,
      }),
    );
  });
  const perTab = tabs.map((s) => s.tasks);
  const sessionWebrtc = after.workers.filter((w) => w.connected).every((w) => w.transport === 'webrtc');
  ok = joined === nTabs && progressed === nTabs && errors.length === 0;
  const dm = cpu1.machine.total - cpu0.machine.total;
  console.log(
    JSON.stringify({
      bench: 'scale',
      ok,
      tabs: nTabs,
      nodes: Number(values.nodes),
      cores: (await import('node:os')).availableParallelism(),
      pages_opened_ms: Math.round(opened),
      joined,
      progressed,
      all_joined_ms: allJoinedMs === null ? null : Math.round(allJoinedMs),
      all_progressed_ms: allProgressedMs === null ? null : Math.round(allProgressedMs),
      webrtc_every_tab: webrtcEverywhere,
      scheduler_transport_webrtc: sessionWebrtc,
      window_s: round(windowS),
      tasks_per_s: round((after.tasks.done - before.tasks.done) / windowS, 2),
      iterations_per_s: round((after.iterationsDone - before.iterationsDone) / windowS, 3),
      tasks_per_tab: { min: Math.min(...perTab), median: median(perTab), max: Math.max(...perTab) },
      tasks_done: after.tasks.done,
      reassignments: after.reassignments,
      browser_pss_mb: round(median(samples.map((s) => s.browserPss)) / 1024),
      browser_pss_mb_max: round(Math.max(...samples.map((s) => s.browserPss)) / 1024),
      browser_pss_mb_by_type: medianBy(samples.map((s) => s.types)),
      browser_pss_mb_per_tab: round(median(samples.map((s) => s.browserPss)) / 1024 / nTabs),
      cluster_rss_mb: round(median(samples.map((s) => s.clusterRss)) / 1024),
      cluster_pss_mb: round(median(samples.map((s) => s.clusterPss)) / 1024),
      cluster_rss_mb_by_role: medianBy(samples.map((s) => s.roles)),
      cpu_machine_busy: dm > 0 ? round((cpu1.machine.busy - cpu0.machine.busy) / dm, 3) : null,
      cpu_browser_cores: round((cpu1.browser - cpu0.browser) / windowS, 2),
      cpu_cluster_cores: round((cpu1.cluster - cpu0.cluster) / windowS, 2),
      errors,
    }),
  );
} finally {
  await h.stop();
}
if (!ok) process.exitCode = 1;
