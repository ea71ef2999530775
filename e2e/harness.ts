/**
 * The e2e harness: a real cluster (`tabshard start --json` as a child process: server-node
 * processes, manager, gateway) and Debian's headless Chromium driven by playwright-core, with
 * fault injection for tabs (close, crash, freeze, WebRTC blocked). It touches the system only
 * through processes, HTTP and the browser: it imports none of the project's code. The lab page
 * (`/lab`) is the harness's own, bundled by path and served to its tabs (lab-bundle.ts).
 *
 * Everything it starts is stopped by `stop()`, by handle and PID: the browser, then the cluster
 * process group (SIGTERM, SIGKILL after a grace period). Call it in a `finally`/`after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  type Browser,
  type BrowserContext,
  type BrowserServer,
  type CDPSession,
  chromium,
  type Page,
} from 'playwright-core';
import { buildLab, gatewayPagePolicy, LAB_ENTRY, type LabBundle, routeLab } from './lab-bundle.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';

/** The line `tabshard start --json` prints once the cluster is up. */
export interface ClusterReady {
  event: 'ready';
  gateway: string;
  /** The server-node processes it started (their process ids). */
  nodes: Array<{ id: string; pid: number; addresses: Record<string, string> }>;
  adminToken: string;
  /** The jobs the cluster runs and the worker page's URL for each. */
  jobs: Array<{ job: number; version: string; url: string }>;
}

export interface HarnessOptions {
  /** Server nodes (default 3). */
  nodes?: number;
  /**
   * What runs the cluster, after the Node executable (default `bin/tabshard.mjs start`): a
   * benchmark's own cluster program (bench/browser/echo-cluster.ts) that takes `start`'s
   * `--port --json --nodes --data-dir` and prints the same ready line.
   */
  clusterCommand?: string[];
  /** More Chromium switches (one switch per element; never split on commas). */
  chromiumArgs?: string[];
  /** More features for the one `--disable-features` switch. */
  disableFeatures?: string[];
  /** Deadline for the cluster's ready line (default 30 000 ms). */
  startTimeoutMs?: number;
  /** More arguments for `tabshard start` (e.g. the job's `--shards`, `--iterations`, `--tau`). */
  startArgs?: string[];
  /** Run the cluster inside this network namespace (e2e/netns.ts). */
  netns?: string;
  /**
   * Entry of the lab bundle served at `/lab`, relative to the repository root (default
   * e2e/lab/main.ts; a benchmark passes its own, e.g. bench/lab/main.ts).
   */
  lab?: string;
}

/** A JSON line the cluster printed after its ready line (metrics, scheduler events). */
export type ClusterEvent = Record<string, unknown> & { event: string };

export interface PageOptions {
  /** Path on the gateway's origin (default '/lab', the harness's lab page). */
  path?: string;
  /**
   * Block WebRTC in this page before any script runs: 'throw' makes `new RTCPeerConnection()`
   * throw; 'silent' lets it run but drops every remote ICE candidate, so it never connects.
   */
  blockWebRtc?: 'throw' | 'silent';
  /** Open the page in its own browser context (default: one shared context). */
  ownContext?: boolean;
}

/** Chromium switches that make WebRTC work on loopback in headless Chromium (docs/architecture.md, platform notes). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
];
export const DISABLE_FEATURES = ['WebRtcHideLocalIpsWithMdns'];

const BLOCK_THROW = `(() => {
  const blocked = function RTCPeerConnection() {
    throw new DOMException('WebRTC blocked by the e2e harness', 'NotSupportedError');
  };
  window.RTCPeerConnection = blocked;
  window.webkitRTCPeerConnection = blocked;
})();`;

// A relay-only ICE policy with no TURN server gathers no local candidates, and remote ones are
// dropped too: ICE can never find a pair (the peer cannot learn a peer-reflexive one either).
const BLOCK_SILENT = `(() => {
  const Real = window.RTCPeerConnection;
  const strip = (d) => d && typeof d.sdp === 'string'
    ? { type: d.type, sdp: d.sdp.split('\\r\\n').filter((l) => !l.startsWith('a=candidate')).join('\\r\\n') }
    : d;
  const relayOnly = (c) => ({ ...(c || {}), iceServers: [], iceTransportPolicy: 'relay' });
  class Silent extends Real {
    constructor(config, ...rest) { super(relayOnly(config), ...rest); }
    setConfiguration(c) { return super.setConfiguration(relayOnly(c)); }
    addIceCandidate() { return Promise.resolve(); }
    setRemoteDescription(d) { return super.setRemoteDescription(strip(d)); }
  }
  window.RTCPeerConnection = Silent;
  window.webkitRTCPeerConnection = Silent;
})();`;

/**
 * Playwright's own `--disable-features=…` switch. Chromium keeps only the last such switch, so
 * ours must carry Playwright's list too. Playwright does not export its list; a launch of
 * `/bin/true` (which exits at once) reports the command line Playwright built, without starting
 * a browser.
 */
export async function playwrightDisableFeatures(): Promise<string | null> {
  try {
    const b = await chromium.launch({ executablePath: '/bin/true', timeout: 10_000 });
    await b.close();
  } catch (err) {
    const m = /<launching> \S+ .*?(--disable-features=\S+)/.exec(String(err));
    return m ? m[1] : null;
  }
  return null;
}

/** Launches Debian's Chromium with the harness's switches (and Playwright's own disabled features). */
async function launchBrowser(opts: HarnessOptions): Promise<BrowserServer> {
  const pwFeatures = await playwrightDisableFeatures();
  const features = [
    ...(pwFeatures ? pwFeatures.slice('--disable-features='.length).split(',') : []),
    ...DISABLE_FEATURES,
    ...(opts.disableFeatures ?? []),
  ];
  return chromium.launchServer({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...(opts.chromiumArgs ?? []), `--disable-features=${features.join(',')}`],
    ignoreDefaultArgs: pwFeatures ? [pwFeatures] : [],
  });
}

/** Starts `tabshard start --json` in its own process group and resolves with its ready line. */
export function startCluster(
  opts: HarnessOptions = {},
  onevent: (ev: ClusterEvent) => void = () => {},
): Promise<{ child: ChildProcess; ready: ClusterReady }> {
  const args = [
    ...(opts.clusterCommand ?? ['bin/tabshard.mjs', 'start']),
    ...['--port', '0', '--json', '--nodes', String(opts.nodes ?? 3)],
  ];
  args.push(...(opts.startArgs ?? []));
  // Each cluster keeps its state in a directory of its own (removed when it exits) unless told one.
  const ownDir = opts.startArgs?.includes('--data-dir') ? null : mkdtempSync(join(tmpdir(), 'tabshard-e2e-'));
  if (ownDir) args.push('--data-dir', ownDir);
  const [cmd, argv] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  if (ownDir) child.once('exit', () => rmSync(ownDir, { recursive: true, force: true }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(new Error('the cluster did not print its ready line in time'));
    }, opts.startTimeoutMs ?? 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`tabshard start exited (${code ?? signal}) before it was ready`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let ev: ClusterReady | null = null;
      try {
        ev = JSON.parse(line);
      } catch {
        return; // not a JSON line
      }
      if (ev?.event !== 'ready') {
        if (ev && typeof ev.event === 'string') onevent(ev as unknown as ClusterEvent);
        return;
      }
      clearTimeout(timer);
      resolve({ child, ready: ev });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the cluster process and its server nodes
  } catch {
    // already gone
  }
}

/**
 * A headless worker (`tabshard worker --url <gateway> …args`) as a user runs it: its JSON lines as
 * they come (inside network namespace `netns` when given), and `exit`, which resolves with its exit
 * code once its output is all read. `kill`
 * (call it in `finally`) ends it if it still runs.
 */
export function runWorkerCli(gateway: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, netns?: string) {
  const argv = ['bin/tabshard.mjs', 'worker', '--url', gateway, ...args];
  const [cmd, full] = netns ? ['ip', ['netns', 'exec', netns, process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(cmd, full, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (l.startsWith('{')) lines.push(JSON.parse(l));
  });
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    lines,
    exit,
    /** The first line of this event, if printed. */
    line: (event: string) => lines.find((l) => l.event === event),
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Stops the cluster: SIGTERM (it stops its nodes), SIGKILL to the group after `graceMs`. */
export function stopCluster(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      killGroup(child, 'SIGKILL'); // a node that outlived its parent
      resolve();
    });
    killGroup(child, 'SIGTERM');
  });
}

export class Harness {
  /** Uncaught page errors and console errors, per page (for test diagnostics). */
  readonly errors = new Map<Page, string[]>();
  /** Every JSON line the cluster printed after its ready line, in order. */
  readonly events: ClusterEvent[] = [];
  private readonly waiters = new Set<{ pred: (ev: ClusterEvent) => boolean; resolve: (ev: ClusterEvent) => void }>();
  private readonly contexts: BrowserContext[] = [];
  private shared: Promise<BrowserContext> | null = null;
  private stopped = false;
  private lab: Promise<LabBundle> | null = null;
  private labEntry = LAB_ENTRY;

  private constructor(
    private ready: ClusterReady,
    private child: ChildProcess,
    private readonly server: BrowserServer | null,
    readonly browser: Browser | null,
  ) {}

  /** Starts the cluster and Chromium; on any failure stops what it started and rethrows. */
  static async start(opts: HarnessOptions = {}): Promise<Harness> {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    const events: ClusterEvent[] = [];
    let deliver = (ev: ClusterEvent) => {
      events.push(ev);
    };
    // The browser starts while the cluster does (each takes a second or more).
    const cluster = startCluster(opts, (ev) => deliver(ev));
    const launched = launchBrowser(opts);
    const [c, b] = await Promise.allSettled([cluster, launched]);
    if (c.status === 'rejected' || b.status === 'rejected') {
      if (b.status === 'fulfilled') b.value.process()?.kill('SIGKILL');
      if (c.status === 'fulfilled') await stopCluster(c.value.child);
      throw c.status === 'rejected' ? c.reason : (b as PromiseRejectedResult).reason;
    }
    const { child, ready } = c.value;
    const server = b.value;
    try {
      const browser = await chromium.connect(server.wsEndpoint());
      const h = new Harness(ready, child, server, browser);
      h.labEntry = opts.lab ?? LAB_ENTRY;
      for (const ev of events) h.event(ev);
      deliver = (ev) => h.event(ev);
      return h;
    } catch (err) {
      server.process()?.kill('SIGKILL');
      await stopCluster(child);
      throw err;
    }
  }

  /**
   * Resolves with the first cluster event (past or future) that `pred` accepts; rejects after
   * `timeoutMs` with the last events in the message, for diagnosis.
   */
  waitForEvent(pred: (ev: ClusterEvent) => boolean, timeoutMs = 60_000): Promise<ClusterEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (ev: ClusterEvent) => {
          clearTimeout(timer);
          resolve(ev);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        const tail = this.events.slice(-5).map((e) => JSON.stringify(e));
        reject(new Error(`no matching cluster event in ${timeoutMs} ms; last: ${tail.join(' ')}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  private event(ev: ClusterEvent): void {
    this.events.push(ev);
    for (const w of [...this.waiters])
      if (w.pred(ev)) {
        this.waiters.delete(w);
        w.resolve(ev);
      }
  }

  /**
   * GET (or with `init`, any method) on the gateway's API; parses the JSON reply. `/api/stats`
   * and `/api/cluster` need the admin token: it is sent unless `init` has an Authorization header.
   */
  async api<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<T> {
    if (/^\/(api\/stats|api\/cluster|metrics)(\?|$)/.test(path)) {
      const headers = new Headers(init?.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${this.ready.adminToken}`);
      init = { ...init, headers };
    }
    const res = await fetch(this.gateway + path, init);
    if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  get gateway(): string {
    return this.ready.gateway;
  }

  /** The ready line of the cluster running now (a new one after `restartCluster`). */
  get cluster(): ClusterReady {
    return this.ready;
  }

  /**
   * `kill -9` of the whole cluster: the start process and every server node (its process group),
   * as a power cut would; resolves once the start process is gone. The browser and its tabs stay.
   */
  async killCluster(): Promise<void> {
    const gone = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    killGroup(this.child, 'SIGKILL');
    await gone;
  }

  /** Starts the cluster again (after `killCluster`); its events keep arriving in `events`. */
  async restartCluster(opts: HarnessOptions): Promise<void> {
    const { child, ready } = await startCluster(opts, (ev) => this.event(ev));
    this.child = child;
    this.ready = ready;
  }

  /** The Chromium process id. */
  get browserPid(): number | undefined {
    return this.server?.process()?.pid;
  }

  /** The `tabshard start` process id; it leads the process group of the cluster (its nodes too). */
  get clusterPid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Memory now (Linux /proc): the browser's process tree (the browser process and all its
   * descendants: renderers, GPU, network service) and the cluster's process group, as the sum of
   * each process's PSS (proportional set size, shared pages split between their users) and RSS.
   */
  memory(): { browser: ProcessMemory; cluster: ProcessMemory } {
    const procs = listProcesses();
    const tree = processTree(this.browserPid, procs);
    const group = this.clusterPid === undefined ? [] : procs.filter((p) => p.pgrp === this.clusterPid);
    return { browser: memoryOf(procs.filter((p) => tree.has(p.pid))), cluster: memoryOf(group) };
  }

  /** Opens a page on the gateway's origin (the lab by default) and waits until it has loaded. */
  async openPage(opts: PageOptions = {}): Promise<Page> {
    if (!opts.ownContext) this.shared ??= this.newContext();
    const ctx = opts.ownContext ? await this.newContext() : await this.shared!;
    const page = await ctx.newPage();
    const errors: string[] = [];
    this.errors.set(page, errors);
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    if (opts.blockWebRtc)
      await page.addInitScript({ content: opts.blockWebRtc === 'throw' ? BLOCK_THROW : BLOCK_SILENT });
    await page.goto(this.gateway + (opts.path ?? '/lab'));
    return page;
  }

  async openPages(n: number, opts: PageOptions = {}): Promise<Page[]> {
    return Promise.all(Array.from({ length: n }, () => this.openPage(opts)));
  }

  /** Closes a page (a tab closed by its user). */
  async closePage(page: Page): Promise<void> {
    await page.close();
  }

  /** Crashes a page's renderer (CDP Page.crash) and resolves once Playwright saw the crash. */
  async crashPage(page: Page): Promise<void> {
    const crashed = new Promise<void>((resolve) => page.once('crash', () => resolve()));
    const cdp = await page.context().newCDPSession(page);
    cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
    await crashed;
  }

  /**
   * Freezes a page's JavaScript (CDP Debugger.pause; an evaluation makes it take effect at once
   * instead of at the page's next task): timers, messages and promise callbacks stop until the
   * returned function resumes it. Resolves once the page is paused.
   */
  async freezePage(page: Page): Promise<() => Promise<void>> {
    const cdp: CDPSession = await page.context().newCDPSession(page);
    const paused = new Promise<void>((resolve) => cdp.once('Debugger.paused', () => resolve()));
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    cdp.send('Runtime.evaluate', { expression: 'void 0' }).catch(() => {}); // answers after the resume
    await paused;
    return async () => {
      await cdp.send('Debugger.resume');
      await cdp.detach();
    };
  }

  /** Stops the browser and the cluster; idempotent, and safe after a failed test. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const proc = this.server?.process();
    try {
      await withTimeout(this.browser?.close() ?? Promise.resolve(), 10_000);
      await withTimeout(this.server?.close() ?? Promise.resolve(), 10_000);
    } catch {
      // a hung browser is killed below
    }
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await stopCluster(this.child);
  }

  private async newContext(): Promise<BrowserContext> {
    const ctx = await this.browser!.newContext();
    this.contexts.push(ctx);
    await routeLab(
      ctx,
      () => this.gateway,
      () => this.labBundle(),
    );
    return ctx;
  }

  /** The lab bundle, built once on the first request for it. */
  private labBundle(): Promise<LabBundle> {
    if (!this.lab) {
      this.lab = gatewayPagePolicy(this.gateway).then((csp) => buildLab(ROOT, this.labEntry, csp));
      this.lab.catch(() => (this.lab = null)); // a failed build is retried on the next request
    }
    return this.lab;
  }
}

export interface ProcessMemory {
  processes: number;
  pssKb: number;
  rssKb: number;
  /** Per process: pid, command name, PSS and RSS (kB). */
  each: Array<{ pid: number; comm: string; pssKb: number; rssKb: number }>;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  comm: string;
}

/** Every process this user can see: /proc/<pid>/stat's ppid and process group. */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')'); // comm may hold spaces and parentheses
      const f = stat.slice(close + 2).split(' '); // state ppid pgrp …
      out.push({
        pid: Number(name),
        ppid: Number(f[1]),
        pgrp: Number(f[2]),
        comm: stat.slice(stat.indexOf('(') + 1, close),
      });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** `root` and all its descendants (pids). */
export function processTree(root: number | undefined, procs = listProcesses()): Set<number> {
  const tree = new Set<number>(root === undefined ? [] : [root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs)
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
  }
  return tree;
}

function memoryOf(procs: ProcInfo[]): ProcessMemory {
  const each: ProcessMemory['each'] = [];
  for (const p of procs) {
    try {
      const rollup = readFileSync(`/proc/${p.pid}/smaps_rollup`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
      each.push({ pid: p.pid, comm: p.comm, pssKb: kb('Pss'), rssKb: kb('Rss') });
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  const sum = (k: 'pssKb' | 'rssKb') => each.reduce((a, e) => a + e[k], 0);
  return { processes: each.length, pssKb: sum('pssKb'), rssKb: sum('rssKb'), each };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}
