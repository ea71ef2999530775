/**
 * bench:failover part 2 — a node joins a loaded cluster: how fast its share of a 1M-key sparse
 * table is copied to it (payload: keys and rows sent in MIGRATE frames) over the copy phase
 * (`copyMbPerS`: from the copying ring's install to every copy acknowledged; target ≥ 100 MB/s)
 * and over the whole join (`mbPerS`), how long pushes of moving keys are refused (`refusedMs`:
 * frozen ring installed to final ring installed; target ≤ 200 ms), and the worst push latency
 * during the join against the median before it. Three `tabshard server` processes, k = 1, a Node worker over TCP pushing +1 to a
 * fixed set of keys spread over the table (one push in flight); afterwards every key is checked
 * against the acknowledged count. JSON lines out, one per run, then the summary (medians).
 *
 *   npm run bench:failover -- --join [--runs 3]
 */
import { Worker } from '../../client/worker.ts';
import { type NodeChild, spawnNode } from '../../server/cluster.ts';
import { ServerManager } from '../../server/manager.ts';
import { tcpDialer } from '../../server/transports/tcp.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import type { TableSpec } from '../../shared/table.ts';

const KEYS = 1 << 20;
const TABLE: TableSpec = {
  job: 0,
  id: 1,
  name: 'big',
  kind: 'sparse',
  keySpace: 2 ** 40,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

export async function joinRun(run: number): Promise<Record<string, number>> {
  const token = `join-${run}`;
  const nodes: NodeChild[] = [];
  try {
    for (const id of ['n1', 'n2', 'n3', 'n4']) nodes.push(await spawnNode(id, ['--no-webrtc'], token));
    const entry = (n: NodeChild) => ({ id: n.id, addresses: n.addresses, control: n.addresses.tcp });
    let steps = { copyMs: 0, frozenMs: 0 };
    const mgr = new ServerManager(tcpDialer(), nodes.slice(0, 3).map(entry), {
      adminToken: token,
      replicas: 1,
      onevent: (e) => {
        if (e.type === 'node-joined') steps = { copyMs: e.copyMs, frozenMs: e.frozenMs };
      },
    });
    await mgr.start();
    await mgr.defineTable(TABLE);
    // Ad-hoc pushes (no task) are the admin's: the benchmark's worker holds the token.
    const w = await Worker.connect({
      seed: async () => mgr.info,
      dialers: { tcp: tcpDialer() },
      workerId: 11 + run,
      adminToken: token,
    });
    const t = w.table('big');
    // Fill the table: 1M keys, in pieces.
    const all = randomSortedKeys(createRng(run + 1), KEYS, 2 ** 40);
    for (let i = 0; i < KEYS; i += 1 << 17) {
      const part = all.subarray(i, i + (1 << 17));
      await w.wait(t.push(part, new Float32Array(part.length).fill(1)));
    }
    const probe = all.filter((_, i) => i % 512 === 0); // 2048 keys over the whole table
    const ones = new Float32Array(probe.length).fill(1);
    let acked = 0;
    let stop = false;
    let joining = false;
    const before: number[] = [];
    const during: number[] = [];
    const loop = (async () => {
      while (!stop) {
        const t0 = performance.now();
        await w.wait(t.push(probe, ones));
        (joining ? during : before).push(performance.now() - t0);
        acked++;
      }
    })();
    while (acked < 30) await new Promise((r) => setTimeout(r, 5));
    const copied0 = await copied(mgr);
    joining = true;
    const t0 = performance.now();
    await mgr.join(entry(nodes[3]));
    const ms = performance.now() - t0;
    joining = false;
    const bytes = (await copied(mgr)) - copied0;
    const settle = acked + 10;
    while (acked < settle) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    await loop;
    const got = (await w.wait(t.pull(probe)))!;
    let wrong = 0;
    for (const v of got) if (v !== acked + 1) wrong++;
    w.close();
    mgr.close();
    return {
      run,
      joinMs: Math.round(ms),
      copiedMB: Math.round(bytes / 1e4) / 100,
      mbPerS: Math.round(bytes / 1e6 / (ms / 1000)),
      // The copy phase alone (copying ring installed, every copy acknowledged) and how long
      // pushes of moving keys were refused (frozen ring installed to final ring installed).
      copyMs: steps.copyMs,
      copyMbPerS: Math.round(bytes / 1e6 / (steps.copyMs / 1000)),
      refusedMs: steps.frozenMs,
      pushMedianBeforeMs: Math.round(median(before) * 10) / 10,
      pushMaxDuringMs: Math.round(Math.max(0, ...during) * 10) / 10,
      pushesDuring: during.length,
      wrongKeys: wrong,
    };
  } finally {
    for (const n of nodes) n.child.kill(process.env.TABSHARD_NODE_FLAGS ? 'SIGTERM' : 'SIGKILL');
  }
}

/** MIGRATE payload sent so far (keys and rows), summed over the nodes. */
async function copied(mgr: ServerManager): Promise<number> {
  let bytes = 0;
  for (const s of (await mgr.stats()) as Array<{ replication?: { copyBytes: number } }>)
    bytes += s.replication?.copyBytes ?? 0;
  return bytes;
}
