/**
 * bench:failover — time from `kill -9` of a server node to the first acknowledged push on its
 * ranges, and whether any acknowledged update was lost (docs/results.md; target ≤ 1 s, 0 lost).
 *
 * Each run starts three real `tabshard server` processes and a manager (k = 1, the defaults of
 * `npm start`: heartbeat 200 ms, dead after 3000 ms of silence or at once when nothing listens
 * where the node was), a Node worker over TCP that pushes +1 to one key of every range of the
 * victim (one push in flight) and to a dense 1M-key table spread over every node, kills the
 * victim with SIGKILL, and keeps pushing. The first push made after the kill that is
 * acknowledged ends the timing. Then every key is pulled and compared with the acknowledged
 * counts. JSON lines out: one per run, then the summary (median of the runs).
 *
 *   npm run bench:failover [-- --runs 5]
 *   npm run bench:failover -- --join [--runs 3]     a node joins instead (join.ts)
 */
import { parseArgs } from 'node:util';
import { Worker } from '../../client/worker.ts';
import { type NodeChild, spawnNode } from '../../server/cluster.ts';
import { ServerManager } from '../../server/manager.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import type { TableSpec } from '../../shared/table.ts';
import { joinRun } from './join.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string' }, join: { type: 'boolean', default: false } },
});
const runs = Number(values.runs ?? (values.join ? 3 : 5));
if (!Number.isInteger(runs) || runs < 1) {
  console.error('bench:failover: --runs must be a positive integer');
  process.exit(2);
}

const DENSE = 1 << 20;
const TABLES: TableSpec[] = [
  {
    job: 0,
    id: 1,
    name: 'oracle',
    kind: 'sparse',
    keySpace: 2 ** 40,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
  {
    job: 0,
    id: 2,
    name: 'dense',
    kind: 'dense',
    keySpace: DENSE,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
];

async function once(run: number): Promise<Record<string, unknown>> {
  const token = `bench-${run}`;
  const nodes: NodeChild[] = [];
  try {
    for (const id of ['n1', 'n2', 'n3']) nodes.push(await spawnNode(id, ['--no-webrtc'], token));
    const events: unknown[] = [];
    const mgr = new ServerManager(
      tcpDialer(),
      nodes.map((n) => ({ id: n.id, addresses: n.addresses, control: n.addresses.tcp })),
      { adminToken: token, replicas: 1, onevent: (e) => events.push(e) },
    );
    await mgr.start();
    for (const t of TABLES) await mgr.defineTable(t);
    // Ad-hoc pushes (no task) are the admin's: the benchmark's worker holds the token.
    const w = await Worker.connect({
      seed: async () => mgr.info,
      dialers: { tcp: tcpDialer() },
      workerId: 7 + run,
      adminToken: token,
    });
    const victim = nodes[1];
    const oracle = w.table('oracle');
    const shape = { id: 1, keySpace: 2 ** 40, valueLength: 1 };
    // One key in every range the victim masters: each push lands on all of them.
    const keys = Float64Array.from(
      w.currentRing
        .ranges(shape)
        .filter((r) => r.owner === victim.id)
        .map((r) => r.begin),
    );
    const ones = new Float32Array(keys.length).fill(1);
    const dense = w.table('dense');
    const denseOnes = new Float32Array(DENSE).fill(1);
    let acked = 0;
    let denseAcked = 0;
    let killedAt = 0;
    let firstAfter = 0;
    let stop = false;
    const pushLoop = (async () => {
      while (!stop) {
        const issued = performance.now();
        await w.wait(oracle.push(keys, ones));
        acked++;
        if (killedAt > 0 && issued > killedAt && firstAfter === 0) firstAfter = performance.now();
      }
    })();
    const denseLoop = (async () => {
      while (!stop) {
        await w.wait(dense.push({ begin: 0, end: DENSE }, denseOnes));
        denseAcked++;
      }
    })();
    while (acked < 50) await new Promise((r) => setTimeout(r, 10));
    killedAt = performance.now();
    victim.child.kill('SIGKILL');
    const deadline = killedAt + 15_000;
    while (firstAfter === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const settleUntil = performance.now() + 500;
    while (performance.now() < settleUntil) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all([pushLoop, denseLoop]);
    const got = (await w.wait(oracle.pull(keys)))!;
    const denseGot = (await w.wait(dense.pull({ begin: 0, end: DENSE })))!;
    let lost = 0;
    let doubled = 0;
    for (const v of got) {
      if (v < acked) lost++;
      if (v > acked) doubled++;
    }
    for (let i = 0; i < DENSE; i++) {
      if (denseGot[i] < denseAcked) lost++;
      if (denseGot[i] > denseAcked) doubled++;
    }
    w.close();
    mgr.close();
    return {
      bench: 'failover',
      run,
      recoveryMs: firstAfter === 0 ? null : Math.round((firstAfter - killedAt) * 10) / 10,
      acked,
      denseAcked,
      victimRanges: keys.length,
      lostKeys: lost,
      doubledKeys: doubled,
      events,
    };
  } finally {
    for (const n of nodes) n.child.kill('SIGKILL');
  }
}

if (values.join) {
  const rs: Array<Record<string, number>> = [];
  for (let r = 0; r < runs; r++) {
    rs.push(await joinRun(r));
    console.log(JSON.stringify({ bench: 'failover-join', ...rs[r] }));
  }
  const med = (k: string) => [...rs.map((x) => x[k])].sort((a, b) => a - b)[Math.floor((runs - 1) / 2)];
  console.log(
    JSON.stringify({
      bench: 'failover-join',
      summary: true,
      runs,
      medianMbPerS: med('mbPerS'),
      medianCopyMbPerS: med('copyMbPerS'),
      medianRefusedMs: med('refusedMs'),
      medianPushMaxDuringMs: med('pushMaxDuringMs'),
      medianPushBeforeMs: med('pushMedianBeforeMs'),
      wrongKeys: rs.reduce((s, x) => s + x.wrongKeys, 0),
      targets: { copyMbPerS: 100, refusedMs: 200 },
    }),
  );
  process.exit(0);
}

const results: Array<Record<string, unknown>> = [];
for (let r = 0; r < runs; r++) {
  const res = await once(r);
  results.push(res);
  console.log(JSON.stringify(res));
}
const times = results
  .map((r) => r.recoveryMs as number | null)
  .filter((x): x is number => x !== null)
  .sort((a, b) => a - b);
console.log(
  JSON.stringify({
    bench: 'failover',
    summary: true,
    runs,
    recovered: times.length,
    medianRecoveryMs: times.length ? times[Math.floor((times.length - 1) / 2)] : null,
    maxRecoveryMs: times.length ? times[times.length - 1] : null,
    lostKeys: results.reduce((s, r) => s + (r.lostKeys as number), 0),
    doubledKeys: results.reduce((s, r) => s + (r.doubledKeys as number), 0),
    targetMs: 1000,
  }),
);
process.exit(0);
