/**
 * The oracle of e2e/failover.test.ts, run as a child process (never imported by a test):
 *
 *   node --import tsx e2e/oracle.ts '{"gateway":"http://127.0.0.1:8080"}'
 *
 * A Worker of job 0 over the nodes' TCP addresses (its seed fetches `${gateway}/api/cluster` with
 * the admin token, so after a failover it learns the ring the manager installed); it says HELLO as
 * admin to every node, since ad-hoc pushes are the operator's only. It pushes +1 to a fixed set of
 * keys of a sum table, spread over the whole key space (one seeded key in each of `keys` equal
 * stretches), as ad-hoc pushes (task 0: every push frame has its own stamp), one push in flight
 * at all times, and counts the acknowledged ones. A push that rejects is an error (it must not
 * happen: a failover is the worker's and the nodes' business); it is reported and not counted.
 *
 * JSON lines on stdout:
 *   {"event":"oracle-ready","worker":…,"ring":v,"keys":n,"owners":{"n1":…}}  (keys each node masters)
 *   {"event":"oracle","acked":n,"errors":e,"ring":v,"maxAckMs":…}           (every `reportMs`)
 *   {"event":"oracle-final","acked":n,"min":…,"max":…,"errors":[…],…}       (then exit 0)
 * On SIGTERM or SIGINT, or when stdin ends (give it a pipe: /dev/null ends at once), it finishes
 * the push in flight, pulls every key and prints the final line: with no update lost or applied
 * twice, min === max === acked.
 *
 * Unlike the e2e harness and tests, this script uses the project's own client library: it is the
 * system's client under test, talking to the cluster from outside (docs: e2e/README.md).
 */
import { Worker } from '../client/worker.ts';
import { tcpDialer } from '../server/transports/tcp.ts';
import { parseClusterInfo } from '../shared/cluster.ts';
import { toTabshardError } from '../shared/errors.ts';
import { createRng } from '../shared/rng.ts';

interface OracleConfig {
  gateway: string;
  /** Job and table pushed to (default job 0, 'sum-sparse': a sum updater, so values count pushes). */
  job?: number;
  table?: string;
  /** How many keys (default 2048) and the seed of their offsets (default 1). */
  keys?: number;
  seed?: number;
  /** Progress line period (default 200 ms). */
  reportMs?: number;
  /** Stamped on pushes (default random). */
  workerId?: number;
  /** The cluster's admin token: `/api/cluster` needs it, and so do ad-hoc pushes on the nodes. */
  adminToken?: string;
}

const MAX_ERRORS = 20;

const cfg = JSON.parse(process.argv[2] ?? '{}') as OracleConfig;
if (typeof cfg.gateway !== 'string') {
  console.error(`usage: node --import tsx e2e/oracle.ts '{"gateway":"http://127.0.0.1:8080"}'`);
  process.exit(2);
}
const gateway = cfg.gateway.replace(/\/$/, '');
const job = cfg.job ?? 0;
const tableName = cfg.table ?? 'sum-sparse';
const nKeys = cfg.keys ?? 2048;
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** One key at a seeded offset in each of `n` equal stretches of [0, keySpace): sorted, distinct. */
function spreadKeys(n: number, keySpace: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const span = Math.floor(keySpace / n);
  if (span < 1) throw new Error(`${n} keys do not fit a key space of ${keySpace}`);
  return Float64Array.from({ length: n }, (_, i) => i * span + rng.int(span));
}

const worker = await Worker.connect({
  seed: async () => {
    const res = await fetch(`${gateway}/api/cluster`, {
      headers: cfg.adminToken ? { authorization: `Bearer ${cfg.adminToken}` } : {},
    });
    if (!res.ok) throw new Error(`/api/cluster: HTTP ${res.status}`);
    const info = parseClusterInfo(await res.json());
    // Table names repeat across jobs ('weights'): keep this job's only.
    return { ...info, tables: info.tables.filter((t) => t.job === job) };
  },
  dialers: { tcp: tcpDialer() },
  prefer: ['tcp'],
  job,
  workerId: cfg.workerId,
  // An operator's client: ad-hoc pushes (task 0) are the admin's only (PROTOCOL.md §6.2).
  adminToken: cfg.adminToken,
});
const table = worker.table(tableName);
if (table.spec.updater !== 'sum' || table.spec.valueLength !== 1)
  throw new Error(`${tableName} is not a sum table of one float per key`);
const keys = spreadKeys(nKeys, table.spec.keySpace, cfg.seed ?? 1);
const ones = new Float32Array(keys.length).fill(1);

/** How many of the keys each node masters under the worker's ring now. */
function owners(): Record<string, number> {
  const ring = worker.currentRing;
  const shape = { id: table.spec.id, keySpace: table.spec.keySpace, valueLength: 1 };
  const out: Record<string, number> = {};
  for (const k of keys) {
    const o = ring.owner(shape, k);
    out[o] = (out[o] ?? 0) + 1;
  }
  return out;
}

let acked = 0;
let pushes = 0;
let maxAckMs = 0;
const errors: string[] = [];
let errorCount = 0;
let stopping = false;

const recordError = (what: string, err: unknown) => {
  errorCount++;
  const e = toTabshardError(err);
  if (errors.length < MAX_ERRORS) errors.push(`${what}: ${e.code}: ${e.message}`);
};

print({
  event: 'oracle-ready',
  worker: worker.id,
  ring: worker.currentRing.version,
  keys: keys.length,
  owners: owners(),
});

const loop = (async () => {
  while (!stopping) {
    const t0 = performance.now();
    pushes++;
    try {
      await worker.wait(table.push(keys, ones));
      acked++;
      maxAckMs = Math.max(maxAckMs, performance.now() - t0);
    } catch (err) {
      recordError(`push ${pushes}`, err);
      await new Promise((r) => setTimeout(r, 50)); // no hot loop of failures
    }
  }
})();

const progress = () =>
  print({
    event: 'oracle',
    acked,
    errors: errorCount,
    ring: worker.currentRing.version,
    maxAckMs: Math.round(maxAckMs),
  });
const ticker = setInterval(progress, cfg.reportMs ?? 200);

let finishing: Promise<void> | null = null;
function finish(): Promise<void> {
  finishing ??= (async () => {
    stopping = true;
    clearInterval(ticker);
    await loop; // the push in flight is acknowledged (or failed) before the read
    let min: number | null = null;
    let max: number | null = null;
    let lost = 0;
    let doubled = 0;
    try {
      const got = (await worker.wait(table.pull(keys)))!;
      min = Number.POSITIVE_INFINITY;
      max = Number.NEGATIVE_INFINITY;
      for (const v of got) {
        if (v < min) min = v;
        if (v > max) max = v;
        if (v < acked) lost++;
        if (v > acked) doubled++;
      }
    } catch (err) {
      recordError('final pull', err);
    }
    print({
      event: 'oracle-final',
      acked,
      pushes,
      min,
      max,
      lostKeys: lost,
      doubledKeys: doubled,
      errors,
      errorCount,
      ring: worker.currentRing.version,
      owners: owners(),
      maxAckMs: Math.round(maxAckMs),
    });
    worker.close();
    process.exit(0);
  })();
  return finishing;
}

process.on('SIGTERM', () => void finish());
process.on('SIGINT', () => void finish());
process.stdin.on('end', () => void finish());
process.stdin.resume();
