/**
 * bench:restart — what durability costs and how a restart goes (docs/results.md). Per run, three
 * `tabshard start --json` clusters (each its own process group: the start process and 3 server
 * nodes) on the demo job (spam logistic regression, 16 shards × 12 iterations, BSP), each trained
 * by one `tabshard worker` over WebRTC:
 *  (a) checkpoints off (`--checkpoint-every 1000000`): wall time from the first lease to done;
 *  (b) a checkpoint after every iteration (the default): the same wall time, and each
 *      checkpoint's hold time and size — (b)/(a) is the cost, measured as a pair in one run;
 *  (c) like (b), but at iteration KILL_AT the whole process group and the worker get SIGKILL;
 *      `tabshard start` again on the same data directory: the time from its spawn to its ready line
 *      (data, nodes, restore), the iteration it resumed at, the tasks that ran again, and the
 *      exactly-once audit at the end (with a new worker).
 * JSON lines on stdout: `restart` per run, then `restart-summary` (medians). Progress on stderr.
 *
 *   npm run bench:restart [-- --runs 3]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KILL_AT = 5;
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('bench:restart: --runs must be a positive integer');
  process.exit(2);
}

type Ev = Record<string, unknown> & { event: string };
const groups = new Set<ChildProcess>();
const killGroup = (c: ChildProcess) => {
  try {
    process.kill(-c.pid!, 'SIGKILL');
  } catch {
    // gone
  }
};
process.on('exit', () => {
  for (const c of groups) killGroup(c);
});

/** A process in its own group whose JSON stdout lines go to `on`; resolves at its exit. */
function proc(args: string[], on: (ev: Ev) => void) {
  const c = spawn(process.execPath, ['bin/tabshard.mjs', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  groups.add(c);
  createInterface({ input: c.stdout! }).on('line', (l) => {
    if (l.startsWith('{'))
      try {
        on(JSON.parse(l));
      } catch {
        // not JSON
      }
  });
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  exited.then(() => groups.delete(c));
  return { c, exited, kill: () => killGroup(c) };
}

/** A cluster: its events, a way to wait for one, its gateway. */
async function cluster(dir: string, extra: string[]) {
  const events: Ev[] = [];
  const waiters: Array<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }> = [];
  const t0 = performance.now();
  const p = proc(['start', '--json', '--port', '0', '--data-dir', dir, ...extra], (ev) => {
    ev.receivedAt = performance.now();
    events.push(ev);
    for (const w of waiters.splice(0))
      if (w.pred(ev)) w.resolve(ev);
      else waiters.push(w);
  });
  const wait = (pred: (e: Ev) => boolean, ms = 300_000) =>
    new Promise<Ev>((resolve, reject) => {
      const seen = events.find(pred);
      if (seen) return resolve(seen);
      const t = setTimeout(() => reject(new Error('bench:restart: event not seen in time')), ms);
      waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(t);
          resolve(e);
        },
      });
    });
  const ready = await wait((e) => e.event === 'ready', 120_000);
  return { ...p, events, wait, gateway: ready.gateway as string, readyMs: performance.now() - t0 };
}

const sched = (ev: string) => (e: Ev) => e.event === 'scheduler' && e.ev === ev;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};

/** Trains the job to its end with one worker; the wall time from the first lease to done. */
async function train(dir: string, extra: string[]) {
  const c = await cluster(dir, extra);
  const w = proc(['worker', '--url', c.gateway, '--job', '1'], () => {});
  try {
    const first = await c.wait(sched('lease'));
    const done = await c.wait((e) => e.event === 'done');
    const ckpts = c.events.filter(sched('checkpoint'));
    return { wallMs: (done.receivedAt as number) - (first.receivedAt as number), ckpts, c };
  } finally {
    w.kill();
    c.kill();
    await Promise.all([w.exited, c.exited]);
  }
}

async function once(run: number) {
  const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'tabshard-bench-restart-')));
  try {
    console.error(`run ${run}: checkpoints off`);
    const off = await train(dirs[0], ['--checkpoint-every', '1000000']);
    console.error(`run ${run}: a checkpoint per iteration`);
    const on = await train(dirs[1], []);
    console.error(`run ${run}: kill -9 at iteration ${KILL_AT}, restart`);
    const a = await cluster(dirs[2], []);
    const w = proc(['worker', '--url', a.gateway, '--job', '1'], () => {});
    await a.wait((e) => sched('iteration')(e) && (e.iteration as number) >= KILL_AT);
    const doneAtKill = a.events.filter(sched('done')).length;
    a.kill();
    w.kill();
    await Promise.all([a.exited, w.exited]);
    const b = await cluster(dirs[2], []);
    const line = b.events.find((e) => e.event === 'data' && /resumes from checkpoint/.test(String(e.message)));
    const resumedAt = Number(/\(iteration (\d+)\)/.exec(String(line?.message))?.[1] ?? NaN);
    const w2 = proc(['worker', '--url', b.gateway, '--job', '1'], () => {});
    await b.wait((e) => e.event === 'done');
    const audit = (await (await fetch(`${b.gateway}/api/jobs/1/audit`)).json()) as { tasks: number; once: number };
    w2.kill();
    b.kill();
    await Promise.all([b.exited, w2.exited]);
    const hold = on.ckpts.map((e) => e.ms as number);
    return {
      bench: 'restart',
      run,
      wallOffMs: Math.round(off.wallMs),
      wallOnMs: Math.round(on.wallMs),
      costRatio: Number((on.wallMs / off.wallMs).toFixed(3)),
      checkpoints: on.ckpts.length,
      checkpointMsMedian: median(hold),
      checkpointMsMax: Math.max(...hold),
      checkpointBytes: on.ckpts.at(-1)?.bytes ?? null,
      restartReadyMs: Math.round(b.readyMs),
      firstReadyMs: Math.round(a.readyMs),
      resumedAt,
      rerunTasks: doneAtKill - resumedAt * 16,
      auditOnce: audit.once === audit.tasks,
    };
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const rows: Array<Awaited<ReturnType<typeof once>>> = [];
for (let r = 1; r <= runs; r++) {
  const row = await once(r);
  rows.push(row);
  console.log(JSON.stringify(row));
}
const m = (k: keyof (typeof rows)[0]) => median(rows.map((r) => r[k] as number));
console.log(
  JSON.stringify({
    bench: 'restart-summary',
    runs,
    costRatio: m('costRatio'),
    checkpointMsMedian: m('checkpointMsMedian'),
    checkpointBytes: m('checkpointBytes'),
    restartReadyMs: m('restartReadyMs'),
    firstReadyMs: m('firstReadyMs'),
    resumedAt: m('resumedAt'),
    rerunTasks: m('rerunTasks'),
    allAuditsOnce: rows.every((r) => r.auditOnce),
  }),
);
process.exit(0);
