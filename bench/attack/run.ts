/**
 * bench:attack — the demo job under one hostile worker, per attack mode, against a clean run
 * (THREAT_MODEL.md). Per mode a fresh embedded cluster (server/cluster.ts, as bench:e2e starts
 * one: 3 server-node processes, the manager, the gateway and the job's scheduler in this process)
 * runs the job `npm start` runs (spam logistic regression, 16 shards × 12 iterations, BSP) with
 * `--workers` honest `tabshard worker` processes and, except in `clean`, one malicious worker
 * (bench/attack/worker.ts) that rewrites its pushes by the mode: scale1e6, flip100 (×−100),
 * flip1 (sign flipped, honest size), noise, nan, outside-keys, restamp (another task's stamp),
 * or hoard (leases held and heartbeated, never finished); opt-in: honest, noise-inbound, reseq,
 * replay.
 *
 * One JSON line per run: the final held-out log-loss and accuracy, the ratio of log-loss to the
 * clean run's of the same repeat (the goal: ≤ 1.02), iterations until the target, wall time and
 * honest tasks/s against clean, what the attacker's frames got (refused by code, applied), the
 * audit; then an `attack-summary` line with medians over the repeats. Spot checks and bans are not
 * built: `banned` is always null.
 *
 *   npm run bench:attack [-- --modes flip100,hoard --repeats 3 --workers 3 --nodes 3 --transport auto --timeout-s 900
 *                           --aggregate median|trimmed-mean[:β]|centered-clip:τ|sum]
 *
 * With --aggregate, the job's tables hold each iteration's pushes and apply one aggregate per key
 * (PROTOCOL.md §6 TABLE `hold`), every run of the repeat, clean included.
 *
 * Every process it starts (workers, server nodes) is stopped when a run ends, fails, or this
 * process is interrupted (bench/run-children.ts).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from '../../client/task-times.ts';
import { type JobRequest, startEmbeddedCluster } from '../../server/cluster.ts';
import { parseAggregateFlag } from '../../shared/aggregate.ts';
import { BIN, child, DEMO_JOB, deadline, runningCluster } from '../run-children.ts';

const ATTACKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

const MODES = ['clean', 'scale1e6', 'flip100', 'flip1', 'noise', 'nan', 'outside-keys', 'restamp', 'hoard'];
const EXTRA_MODES = ['honest', 'noise-inbound', 'reseq', 'replay'];
/** The lead's goal: an attacked run's final held-out log-loss within 2 % of the clean run's. */
const GOAL_RATIO = 1.02;

interface Run {
  mode: string;
  final: { logLoss: number; accuracy: number };
  /** Iterations run until the held-out target was first met (null: never). */
  iterationsToTarget: number | null;
  wallMs: number;
  honestTasks: number;
  honestTasksPerS: number;
  attacker: Record<string, unknown> | null;
  attackerLeases: number;
  /** The attacker's TASK_DONEs the scheduler refused (receipts short of the task's pushes). */
  attackerTasksRefused: number;
  /** Honest workers' TASK_DONEs refused (the goal: 0). */
  honestTasksRefused: number;
  retaken: number;
  /** The honest workers' node connections by transport. */
  transports: Record<string, number>;
  audit: { tasks: number; missing: number; once: number; more: number };
}

/** One run on a fresh cluster: `workers` honest workers and, unless clean, the malicious one. */
async function runMode(
  mode: string,
  o: { workers: number; nodes: number; transport: string; seed: number; timeoutMs: number; aggregate?: string },
) {
  const request: JobRequest = o.aggregate
    ? { ...DEMO_JOB, config: { ...DEMO_JOB.config, aggregate: parseAggregateFlag(o.aggregate) } }
    : DEMO_JOB;
  const c = await startEmbeddedCluster({ nodes: o.nodes, jobs: [request] });
  runningCluster(c);
  const spawned: ReturnType<typeof child>[] = [];
  try {
    const job = c.jobs[0];
    const id = job.app.job;
    let firstLease: number | undefined;
    let doneAt: number | undefined;
    const doneBy: number[] = [];
    /** Workers of TASK_DONEs refused for receipts short of the pushes (PROTOCOL.md §6.3). */
    const unapplied: number[] = [];
    const ended = new Promise<void>((resolve) =>
      job.listen({
        log: (e) => {
          const ev = e as { ev?: string; worker?: number; task?: number };
          if (ev.ev === 'lease') {
            firstLease ??= performance.now();
            leases.set(ev.task!, [...(leases.get(ev.task!) ?? []), ev.worker!]);
          }
          if (ev.ev === 'done') doneBy.push(ev.worker!);
          if (ev.ev === 'return' && (ev as { reason?: string }).reason === 'unapplied') unapplied.push(ev.worker!);
        },
        done: () => {
          doneAt = performance.now();
          resolve();
        },
      }),
    );
    const transports: Record<string, number> = {};
    for (let i = 0; i < o.workers; i++)
      spawned.push(
        child([BIN, 'worker', '--url', c.gateway, '--job', String(id), '--transport', o.transport], (ev) => {
          if (ev.event !== 'worker') return;
          for (const k of Object.values(ev.transports as Record<string, string>))
            transports[k] = (transports[k] ?? 0) + 1;
        }),
      );
    let attacker: Record<string, unknown> | null = null;
    let attackerId: number | undefined;
    /** task → the worker of each lease of it, in order. */
    const leases = new Map<number, number[]>();
    if (mode !== 'clean') {
      const args = ['--import', 'tsx', ATTACKER, '--url', c.gateway, '--job', String(id), '--attack', mode];
      spawned.push(
        child([...args, '--seed', String(o.seed)], (ev) => {
          if (ev.event === 'worker') attackerId = Number(ev.worker);
          if (ev.event === 'finished') attacker = ev;
        }),
      );
    }
    await deadline(Promise.all([ended, ...spawned.map((s) => s.exited)]), o.timeoutMs, `mode ${mode}`);
    const { target } = job.app;
    const hit = job.metrics.find(
      (m) => m.accuracy >= target.accuracy && (target.logLoss === undefined || m.logLoss <= target.logLoss),
    );
    const last = job.latest!;
    const wallMs = Math.round(doneAt! - firstLease!);
    const honestTasks = doneBy.filter((w) => w !== attackerId).length;
    // The attacker's leases, and those of a task whose previous lease it held too (it took back
    // a task that had been taken away from it).
    const held = [...leases.values()];
    const attackerLeases = held.flatMap((ws) => ws.filter((w) => w === attackerId)).length;
    const retaken = held.flatMap((ws) => ws.filter((w, i) => i > 0 && w === attackerId && ws[i - 1] === w)).length;
    const run: Run = {
      mode,
      final: { logLoss: last.logLoss, accuracy: last.accuracy },
      iterationsToTarget: hit ? hit.iteration + 1 : null,
      wallMs,
      honestTasks,
      honestTasksPerS: honestTasks / (wallMs / 1000),
      attacker,
      attackerLeases,
      attackerTasksRefused: unapplied.filter((w) => w === attackerId).length,
      honestTasksRefused: unapplied.filter((w) => w !== attackerId).length,
      retaken,
      transports,
      audit: await job.auditTasks(),
    };
    return run;
  } finally {
    for (const s of spawned) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await c.stop();
    runningCluster(null);
  }
}

const r4 = (x: number | null) => (x === null ? null : +x.toFixed(4));

/** The attacker's replies split: refused (ERROR codes), applied, duplicates. */
function attackerLine(a: Record<string, unknown> | null) {
  if (!a) return null;
  const codes = (a.codes ?? {}) as Record<string, number>;
  const refused = Object.fromEntries(Object.entries(codes).filter(([c]) => c.startsWith('TS_ERR_')));
  return {
    tasks: a.tasks,
    framesSent: a.sent,
    refused,
    applied: a.applied,
    duplicates: codes.DUPLICATE ?? 0,
    ...(a.tasksWithoutGradient === undefined ? {} : { tasksWithNoModelPushApplied: a.tasksWithoutGradient }),
    ...(a.leases === undefined ? {} : { leasesHoarded: a.leases, heldMs: median((a.heldMs as number[]) ?? []) }),
    ...((a.unexpected as string[] | undefined)?.length ? { unexpected: a.unexpected } : {}),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '1' },
      modes: { type: 'string', default: MODES.join(',') },
      workers: { type: 'string', default: '3' },
      nodes: { type: 'string', default: '3' },
      transport: { type: 'string', default: 'auto' },
      'timeout-s': { type: 'string', default: '900' },
      aggregate: { type: 'string' },
    },
  });
  const asked = values.modes.split(',').filter(Boolean);
  for (const m of asked)
    if (!MODES.includes(m) && !EXTRA_MODES.includes(m))
      throw new Error(`unknown mode ${m} (modes: ${[...MODES, ...EXTRA_MODES].join(', ')})`);
  // Every ratio is to the clean run of the same repeat: it runs first.
  const modes = ['clean', ...asked.filter((m) => m !== 'clean')];
  const o = {
    workers: Number(values.workers),
    nodes: Number(values.nodes),
    transport: values.transport,
    timeoutMs: Number(values['timeout-s']) * 1000,
    aggregate: values.aggregate,
  };
  const rows: Array<{
    mode: string;
    ratio: number;
    iterations: number | null;
    throughput: number;
    wall: number;
    applied: number;
  }> = [];
  for (let repeat = 0; repeat < Number(values.repeats); repeat++) {
    let clean: Run | null = null;
    for (const mode of modes) {
      console.error(`attack: repeat ${repeat}: ${mode}`);
      const r = await runMode(mode, { ...o, seed: repeat + 1 });
      clean ??= r;
      const ratio = r.final.logLoss / clean.final.logLoss;
      const throughput = r.honestTasksPerS / clean.honestTasksPerS;
      const attacker = attackerLine(r.attacker);
      console.log(
        JSON.stringify({
          bench: 'attack',
          repeat,
          mode,
          final: { logLoss: r4(r.final.logLoss), accuracy: r4(r.final.accuracy) },
          logLossRatio: r4(ratio),
          goalMet: ratio <= GOAL_RATIO,
          iterationsToTarget: r.iterationsToTarget,
          wallMs: r.wallMs,
          wallVsClean: r4(r.wallMs / clean.wallMs),
          honestTasks: r.honestTasks,
          honestTasksPerS: r4(r.honestTasksPerS),
          throughputVsClean: r4(throughput),
          throughputLost: r4(1 - throughput),
          attacker: attacker && {
            ...attacker,
            leases: r.attackerLeases,
            leasesRetaken: r.retaken,
            tasksRefused: r.attackerTasksRefused,
          },
          honestTasksRefused: r.honestTasksRefused,
          honestTransports: r.transports,
          audit: r.audit,
          // Spot checks and bans are not built (THREAT_MODEL.md): no attacker is ever banned.
          banned: null,
        }),
      );
      rows.push({
        mode,
        ratio,
        iterations: r.iterationsToTarget,
        throughput,
        wall: r.wallMs / clean.wallMs,
        applied: Number((attacker?.applied as number | undefined) ?? 0),
      });
    }
  }
  const summary = modes.map((mode) => {
    const rs = rows.filter((r) => r.mode === mode);
    const reached = rs.map((r) => r.iterations).filter((x): x is number => x !== null);
    const ratio = median(rs.map((r) => r.ratio));
    return {
      mode,
      logLossRatio: r4(ratio),
      goalMet: ratio <= GOAL_RATIO,
      iterationsToTarget: reached.length === rs.length ? median(reached) : null,
      throughputVsClean: r4(median(rs.map((r) => r.throughput))),
      wallVsClean: r4(median(rs.map((r) => r.wall))),
      attackerApplied: median(rs.map((r) => r.applied)),
    };
  });
  console.log(
    JSON.stringify({
      bench: 'attack-summary',
      repeats: Number(values.repeats),
      goal: { logLossRatio: GOAL_RATIO },
      modes: summary,
      // Spot checks and bans are not built (THREAT_MODEL.md).
      banned: null,
    }),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
