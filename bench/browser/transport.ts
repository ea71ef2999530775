/**
 * bench:browser — one Chromium tab, one server node (echo-cluster.ts: the embedded cluster whose
 * node has the raw echo injected, echo-node.ts): raw data-channel throughput (1M-float-sized
 * messages the node acknowledges or answers without decoding, bench/lab/raw-echo.ts) vs
 * parameter-server push and pull of a 1M-float dense range and a 100k-key sparse
 * push, on the same transport to the same node process. One JSON line per op, medians over
 * `--reps` (default 11); `ratio` = PS throughput / raw throughput (target ≥ 0.8).
 *
 *   npm run bench:browser [-- --reps 9] [-- --transport ws]
 */
import { parseArgs } from 'node:util';
import { Harness } from '../../e2e/harness.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '11' },
    transport: { type: 'string', default: 'webrtc' },
    floats: { type: 'string', default: String(1 << 20) },
    'sparse-keys': { type: 'string', default: '100000' },
  },
});
const transport = values.transport === 'ws' ? 'ws' : 'webrtc';

interface BenchRow {
  op: string;
  bytes: number;
  psMs: number;
  rawMs: number;
  psMBps: number;
  rawMBps: number;
  ratio: number;
}
type Lab = {
  connect(o: { prefer: string[]; adminToken: string }): Promise<unknown>;
  transports(): Record<string, { kind: string; ms: number }>;
  bench(o: object): Promise<{ transport: string; rows: BenchRow[] }>;
};

const h = await Harness.start({
  nodes: 1,
  clusterCommand: ['--import', 'tsx', 'bench/browser/echo-cluster.ts'],
  lab: 'bench/lab/main.ts',
});
try {
  const page = await h.openPage();
  // The lab pushes ad hoc (no task): an admin's connection.
  await page.evaluate(
    ([prefer, adminToken]) => (window as unknown as { tabshardLab: Lab }).tabshardLab.connect({ prefer, adminToken }),
    [transport === 'ws' ? ['ws'] : ['webrtc', 'ws'], h.cluster.adminToken] as const,
  );
  const opts = {
    reps: Number(values.reps),
    floats: Number(values.floats),
    sparseKeys: Number(values['sparse-keys']),
    transport,
  };
  const res = await page.evaluate((o) => (window as unknown as { tabshardLab: Lab }).tabshardLab.bench(o), opts);
  const used = await page.evaluate(() => (window as unknown as { tabshardLab: Lab }).tabshardLab.transports());
  const workerTransport = Object.values(used).map((r) => r.kind); // empty when the worker dialled ws directly
  for (const row of res.rows)
    console.log(
      JSON.stringify({
        bench: 'browser-transport',
        raw: res.transport,
        worker: workerTransport,
        reps: opts.reps,
        ...row,
      }),
    );
} finally {
  await h.stop();
}
