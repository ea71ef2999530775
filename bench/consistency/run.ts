/**
 * bench:consistency — the paper's consistency study (Figures 9, 10, 13; docs/architecture.md §5, §8): one
 * job trained by N workers, one of them an F× straggler, under BSP, bounded delay τ = 1, 2, 4, 8,
 * ASP, eager SSP and staleness-aware learning rates. Every mode runs on a fresh embedded cluster
 * (`tabshard start`, real server-node processes) with N headless Node workers (`tabshard worker`,
 * real processes over WebRTC data channels; `--transport ws` for the relay), the first with
 * `--slowdown F`. `--tabs K` makes the first K workers worker-page tabs in one headless Chromium
 * (the straggler a tab opened with `?slowdown=F`).
 *
 * For each mode: time (from the first lease) to a fixed held-out log-loss, per-worker compute vs
 * wait time, final quality, values pulled per iteration against the table's size. JSON lines on
 * stdout (`consistency-point` per evaluation, `consistency` per mode, `consistency-summary`), and
 * an SVG plot of log-loss vs time per mode (`--out`, default bench-results/consistency.svg).
 *
 *   npm run bench:consistency [-- --workers 4 --straggler 3 --shards 4 --iterations 12
 *       --modes bsp,tau1,tau2,tau4,tau8,asp,tau2-eager,tau4-slr,asp-slr --target 0.12 --repeats 3 --tabs 0
 *       --data spam|ctr --examples N --app NAME]
 *
 * Mode names: `bsp` (τ = 0), `tauK`, `asp` (τ = ∞), with `-eager` (eager SSP), `-slr`
 * (staleness-aware learning rate) and/or `-backup` (backup tasks) appended.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { Harness, ROOT, startCluster, stopCluster } from '../../e2e/harness.ts';
import { lineChartSvg } from './plot.ts';

export interface Mode {
  name: string;
  tau: number | null;
  eager: boolean;
  stalenessLr: boolean;
  /** Backup tasks (`tabshard start --backups`; bench/stragglers.ts). */
  backups: boolean;
}

/** Parses a mode name (see the file header); TypeError for anything else. */
export function parseMode(name: string): Mode {
  const parts = name.split('-');
  const base = parts[0];
  const flags = new Set(parts.slice(1));
  for (const f of flags)
    if (f !== 'eager' && f !== 'slr' && f !== 'backup') throw new TypeError(`mode ${name}: unknown suffix ${f}`);
  let tau: number | null;
  if (base === 'bsp') tau = 0;
  else if (base === 'asp') tau = null;
  else if (/^tau\d+$/.test(base)) tau = Number(base.slice(3));
  else throw new TypeError(`mode ${name}: expected bsp, asp or tauK`);
  return { name, tau, eager: flags.has('eager'), stalenessLr: flags.has('slr'), backups: flags.has('backup') };
}

interface WorkerResult {
  straggler: boolean;
  worker?: number;
  tasks: number;
  examples: number;
  computeMs: number;
  waitMs: number;
  pulledValues: number;
  /** Wire bytes of the worker (client/worker.ts `bytes`; Node workers only). */
  bytes?: { pushed: number; requested: number; pulled: number; published: number };
}

interface Metric {
  iteration: number;
  ms: number;
  logLoss: number;
  accuracy: number;
}

/** Spawns a headless worker; resolves with its totals when it exits after the job. */
function spawnWorker(gateway: string, args: string[], straggler: boolean) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/tabshard.mjs', 'worker', '--url', gateway, '--job', '1', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const result: WorkerResult = { straggler, tasks: 0, examples: 0, computeMs: 0, waitMs: 0, pulledValues: 0 };
  const done = new Promise<WorkerResult>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === 'worker') result.worker = ev.worker;
        if (ev.event === 'finished') Object.assign(result, pick(ev), { bytes: ev.bytes });
      } catch {
        // not a JSON line
      }
    });
    child.once('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`worker exited with ${code}`))));
  });
  return { child, done };
}

const pick = (ev: Record<string, number>) => ({
  tasks: ev.tasks,
  examples: ev.examples,
  computeMs: Math.round(ev.computeMs),
  waitMs: Math.round(ev.waitMs),
  pulledValues: ev.pulledValues,
});

export interface StudyOptions {
  workers: number;
  straggler: number;
  shards: number;
  iterations: number;
  nodes: number;
  transport: string;
  target: number;
  data: string[];
  leaseMs: number;
  /** Runs per mode (medians are reported). */
  repeats: number;
  /** How many of the workers are browser tabs (the first ones; worker 0 is the straggler). */
  tabs: number;
  /** `MS:EVERY`: worker 1 (a Node worker) rests MS ms after every EVERY-th task (`--stall`). */
  stall?: string;
  /** More `tabshard start` flags (bench/traffic.ts: the traffic options). */
  startArgs?: string[];
  /** More `tabshard worker` flags for every Node worker. */
  workerArgs?: string[];
}

type TabTotals = WorkerResult & { state: string };

/** The totals a worker page shows (window.tabshard). */
async function tabTotals(page: Page, straggler: boolean): Promise<WorkerResult> {
  const s = (await page.evaluate(() => (globalThis as unknown as { tabshard: TabTotals }).tabshard)) as TabTotals;
  return { straggler, worker: s.worker, ...pick(s as never) };
}

/** Runs one mode on a fresh cluster; returns its metrics and the workers' totals. */
export async function runMode(mode: Mode, o: StudyOptions) {
  const startArgs = [
    ...['--shards', String(o.shards), '--iterations', String(o.iterations)],
    ...['--tau', mode.tau === null ? 'inf' : String(mode.tau), '--lease-ms', String(o.leaseMs)],
    ...['--heartbeat-ms', String(Math.max(1, Math.floor(o.leaseMs / 4)))],
    ...(mode.eager ? ['--eager'] : []),
    ...(mode.stalenessLr ? ['--staleness-lr'] : []),
    ...(mode.backups ? ['--backups'] : []),
    ...o.data,
    ...(o.startArgs ?? []),
  ];
  // With tabs, the harness starts the cluster and a headless Chromium; without, only the cluster.
  const harness = o.tabs > 0 ? await Harness.start({ nodes: o.nodes, startArgs }) : null;
  const plain = harness ? null : await startCluster({ nodes: o.nodes, startArgs });
  const gateway = harness ? harness.gateway : plain!.ready.gateway;
  const workers: ReturnType<typeof spawnWorker>[] = [];
  const pages: Page[] = [];
  try {
    for (let i = 0; i < o.workers; i++) {
      const slow = i === 0 && o.straggler > 1;
      const stall = i === 1 && o.stall ? ['--stall', o.stall] : [];
      if (i < o.tabs) {
        pages.push(await harness!.openPage({ path: `/?job=1${slow ? `&slowdown=${o.straggler}` : ''}` }));
        continue;
      }
      workers.push(
        spawnWorker(
          gateway,
          [
            ...['--transport', o.transport, ...(slow ? ['--slowdown', String(o.straggler)] : []), ...stall],
            ...(o.workerArgs ?? []),
          ],
          slow,
        ),
      );
    }
    const nodeResults = await Promise.all(workers.map((w) => w.done));
    // Tabs keep their page open after the job: the last evaluation marks the end.
    if (harness)
      await harness.waitForEvent((ev) => ev.event === 'metric' && ev.iteration === o.iterations - 1, 30 * 60_000);
    const tabResults = await Promise.all(pages.map((p, i) => tabTotals(p, i === 0 && o.straggler > 1)));
    const job = (await (await fetch(`${gateway}/api/jobs/1`)).json()) as {
      metrics: Metric[];
      meta: Record<string, unknown>;
      backups?: { granted: number; won: number };
    };
    return { metrics: job.metrics, meta: job.meta, backups: job.backups, results: [...tabResults, ...nodeResults] };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    if (harness) await harness.stop();
    if (plain) await stopCluster(plain.child);
  }
}

/** The first evaluation at or below `target` log-loss, if any. */
export function firstReached(metrics: Metric[], target: number): Metric | undefined {
  return metrics.find((m) => m.logLoss <= target);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '4' },
      straggler: { type: 'string', default: '3' },
      shards: { type: 'string', default: '4' },
      iterations: { type: 'string', default: '12' },
      nodes: { type: 'string', default: '2' },
      transport: { type: 'string', default: 'auto' },
      modes: { type: 'string', default: 'bsp,tau1,tau2,tau4,tau8,asp,tau2-eager,tau4-slr,asp-slr' },
      target: { type: 'string', default: '0.12' },
      'lease-ms': { type: 'string', default: '20000' },
      data: { type: 'string', default: 'spam' },
      examples: { type: 'string' },
      app: { type: 'string', default: 'logreg' },
      tabs: { type: 'string', default: '0' },
      repeats: { type: 'string', default: '3' },
      out: { type: 'string', default: join('bench-results', 'consistency.svg') },
    },
  });
  const o: StudyOptions = {
    workers: Number(values.workers),
    straggler: Number(values.straggler),
    shards: Number(values.shards),
    iterations: Number(values.iterations),
    nodes: Number(values.nodes),
    transport: values.transport,
    target: Number(values.target),
    data: [
      ...['--data', values.data, '--app', values.app],
      ...(values.examples ? ['--examples', values.examples] : []),
    ],
    leaseMs: Number(values['lease-ms']),
    tabs: Number(values.tabs),
    repeats: Number(values.repeats),
  };
  const modes = values.modes.split(',').map(parseMode);
  const runs = new Map<string, Array<{ metrics: Metric[]; reached?: Metric }>>(modes.map((m) => [m.name, []]));
  let dataLabel: unknown = null;
  // Repeats go round the modes, so a noisy stretch of the shared machine spreads over all of them.
  for (let repeat = 0; repeat < o.repeats; repeat++)
    for (const mode of modes) {
      const r = await runMode(mode, o);
      dataLabel ??= r.meta.dataset ?? { corpus: r.meta.corpus, keyBits: r.meta.keyBits, train: r.meta.train };
      for (const m of r.metrics)
        console.log(JSON.stringify({ bench: 'consistency-point', mode: mode.name, repeat, ...m }));
      const reached = firstReached(r.metrics, o.target);
      const last = r.metrics.at(-1);
      const pulled = r.results.reduce((n, w) => n + w.pulledValues, 0);
      const keyBits = Number(r.meta.keyBits);
      console.log(
        JSON.stringify({
          bench: 'consistency',
          mode: mode.name,
          repeat,
          tau: mode.tau,
          eager: mode.eager,
          stalenessLr: mode.stalenessLr,
          data: dataLabel,
          workers: o.workers,
          tabs: o.tabs,
          straggler: o.straggler,
          shards: o.shards,
          target: o.target,
          timeToTargetMs: reached?.ms ?? null,
          iterationsToTarget: reached ? reached.iteration + 1 : null,
          totalMs: last?.ms ?? null,
          final: last ? { iteration: last.iteration + 1, logLoss: last.logLoss, accuracy: last.accuracy } : null,
          perWorker: r.results.map((w) => ({
            ...w,
            computeShare: +(w.computeMs / Math.max(1, w.computeMs + w.waitMs)).toFixed(3),
          })),
          pulledBytesPerIteration: Math.round((4 * pulled) / o.iterations),
          // Reads on the wire (Node workers): pull requests (keys) and replies, and eager publications.
          wireReadBytesPerIteration: wireReads(r.results, o.iterations),
          tableBytes: { keySpace: 4 * 2 ** keyBits, touched: 4 * Number(r.meta.features) },
        }),
      );
      runs.get(mode.name)!.push({ metrics: r.metrics, reached });
    }
  // Per mode: medians over the repeats (a run that never reached the target counts as ∞), and
  // the run with the median time to target for the plot.
  const rows = modes.map((mode) => {
    const rs = [...runs.get(mode.name)!].sort((a, b) => (a.reached?.ms ?? Infinity) - (b.reached?.ms ?? Infinity));
    const mid = rs[(rs.length - 1) >> 1];
    return {
      mode,
      plotted: mid,
      ms: mid.reached?.ms ?? null,
      final: median(rs.map((r) => r.metrics.at(-1)?.logLoss ?? Infinity)),
      totalMs: median(rs.map((r) => r.metrics.at(-1)?.ms ?? Infinity)),
    };
  });
  const bsp = rows.find((r) => r.mode.tau === 0 && !r.mode.eager && !r.mode.stalenessLr);
  const bounded = rows.filter((r) => r.mode.tau !== null && r.mode.tau > 0 && r.ms !== null);
  const best = bounded.sort((a, b) => a.ms! - b.ms!)[0];
  console.log(
    JSON.stringify({
      bench: 'consistency-summary',
      data: dataLabel,
      target: o.target,
      repeats: o.repeats,
      medians: Object.fromEntries(
        rows.map((r) => [r.mode.name, { timeToTargetMs: r.ms, totalMs: r.totalMs, finalLogLoss: r.final }]),
      ),
      bspMs: bsp?.ms ?? null,
      bestBounded: best ? { mode: best.mode.name, ms: best.ms } : null,
      speedupOverBsp: best && bsp?.ms ? +(bsp.ms / best.ms!).toFixed(2) : null,
    }),
  );
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(
    values.out,
    lineChartSvg({
      title: `${dataName(dataLabel)}: held-out log-loss vs time, ${o.workers} workers, one ${o.straggler}× straggler (median of ${o.repeats})`,
      xLabel: 'ms since the first task was leased',
      yLabel: 'held-out log-loss',
      series: rows.map((r) => ({ name: r.mode.name, points: r.plotted.metrics.map((m) => [m.ms, m.logLoss]) })),
      target: { y: o.target, label: `target ${o.target}` },
    }),
  );
  console.error(`plot written to ${values.out}`);
}

/** A short name of the data set for the plot's title. */
function dataName(label: unknown): string {
  const l = (label ?? {}) as Record<string, unknown>;
  return String(l.name ?? l.generator ?? l.corpus ?? 'data');
}

/** Bytes per iteration of the workers' reads on the wire, summed (null when no worker reported). */
function wireReads(results: WorkerResult[], iterations: number) {
  const b = results.map((w) => w.bytes).filter((x) => x !== undefined);
  if (b.length === 0) return null;
  const sum = (k: 'requested' | 'pulled' | 'published') => Math.round(b.reduce((n, x) => n + x[k], 0) / iterations);
  return { requested: sum('requested'), pulled: sum('pulled'), published: sum('published') };
}

/** The median of `xs` (the lower middle for an even count); ∞ entries stay ∞. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
