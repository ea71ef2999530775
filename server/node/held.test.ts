/**
 * Held aggregation (PROTOCOL.md §6 TABLE `hold`, shared/aggregate.ts, server/node/held.ts): the
 * rules' math on rows with an outlier; a holding table applies nothing until CLOCK, then one
 * aggregate per key; a FENCE drops the fenced attempt's held pushes and forgets their seqs, so the
 * task's re-run under the same seqs is applied, not taken for a duplicate; and over a real
 * cluster with replication, a worker's task pushes are held until the manager's CLOCK and the
 * replicas get the aggregate's rows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import {
  aggregateRows,
  aggregateScratch,
  type HoldSpec,
  parseAggregateFlag,
  parseHold,
} from '../../shared/aggregate.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { KvKeys } from '../../shared/protocol/kv.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { until } from '../scheduler/testkit.ts';
import type { ServerNode } from './node.ts';
import { Table } from './table.ts';
import { tableSpec, testCluster } from './testkit.ts';

/** A node's own copy of a table (a test looks past the wire). */
const tableOf = (n: ServerNode, id: number) => (n as unknown as { table(job: number, id: number): Table }).table(0, id);
const isCode = (code: string) => (e: unknown) => e instanceof TabshardError && e.code === code;

/** n × the rule's estimate of the mean of `rows` (n rows of d floats): what n pushes of it add up to. */
function agg(spec: HoldSpec, rows: number[][]): number[] {
  const d = rows[0].length;
  const out = new Float32Array(d);
  aggregateRows(spec, Float32Array.from(rows.flat()), (r) => r * d, rows.length, d, out, 0, aggregateScratch());
  return Array.from(out, (x) => x * rows.length);
}

const hold = (rule: HoldSpec['rule'], more: Partial<HoldSpec> = {}): HoldSpec => ({
  rule,
  tasksPerIteration: 4,
  ...more,
});
const close = (a: number[], b: number[], tol = 1e-4) =>
  assert.ok(
    a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol * (1 + Math.abs(b[i]))),
    `${a} vs ${b}`,
  );

describe('held aggregation', () => {
  it('computes n × the robust estimate: one outlier moves the sum, not the trimmed mean, median or centered clip', () => {
    const honest = [
      [1, -2],
      [1.2, -1.8],
      [0.8, -2.2],
      [1.1, -2.1],
    ];
    const rows = [...honest, [-100, 100]];
    close(agg(hold('sum'), rows), [-95.9, 91.9]);
    close(agg(hold('trimmed-mean', { trim: 0.2 }), rows), [(5 * (1 + 1.1 + 0.8)) / 3, (5 * (-2 - 2.1 - 1.8)) / 3]);
    close(agg(hold('median'), rows), [5 * 1, 5 * -2]);
    // Centered clipping from the median: the outlier pulls the centre by at most τ / n a round.
    const cc = agg(hold('centered-clip', { clip: 0.5 }), rows);
    const centre = cc.map((x) => x / 5);
    assert.ok(Math.hypot(centre[0] - 1.02, centre[1] + 2.02) < 3 * (0.5 / 5) + 0.05, `${centre}`);
    // With no attacker every rule estimates the sum.
    for (const spec of [hold('trimmed-mean', { trim: 0.2 }), hold('median'), hold('centered-clip', { clip: 10 })])
      close(agg(spec, honest), [4.1, -8.1], 0.06);
    // One row: the row itself, whatever the rule.
    for (const r of ['sum', 'trimmed-mean', 'median'] as const) close(agg(hold(r), [[3, 4]]), [3, 4]);
  });

  it('refuses a malformed hold spec with a coded error', () => {
    for (const bad of [
      {},
      { rule: 'mean', tasksPerIteration: 4 },
      { rule: 'sum', tasksPerIteration: 0 },
      { rule: 'trimmed-mean', tasksPerIteration: 4, trim: 0.5 },
      { rule: 'centered-clip', tasksPerIteration: 4 },
      { rule: 'centered-clip', tasksPerIteration: 4, clip: -1 },
      [],
    ])
      assert.throws(() => parseHold(bad), isCode('TS_ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
    assert.deepEqual(parseHold({ rule: 'median', tasksPerIteration: 16 }), { rule: 'median', tasksPerIteration: 16 });
    // The command line's spelling (`tabshard start --aggregate`).
    assert.deepEqual(parseAggregateFlag('median'), { rule: 'median' });
    assert.deepEqual(parseAggregateFlag('trimmed-mean:0.1'), { rule: 'trimmed-mean', trim: 0.1 });
    assert.deepEqual(parseAggregateFlag('centered-clip:2.5'), { rule: 'centered-clip', clip: 2.5 });
    for (const bad of ['mean', 'median:3', 'trimmed-mean:0.6', 'centered-clip', 'centered-clip:x', 'sum:1:2'])
      assert.throws(
        () => parseAggregateFlag(bad),
        (e) => isCode('TS_ERR_INVALID_ARGUMENT')(e) && /--aggregate/.test(String(e)),
        bad,
      );
  });

  it('holds task pushes until CLOCK, drops a fenced attempt’s and lets its re-run apply under the same seqs', () => {
    const t = new Table({ ...tableSpec(1, 'w', 'sparse', 100), hold: hold('median') });
    const keys: KvKeys = { kind: 'list', keys: Float64Array.from([3, 7]) };
    const read = () => Array.from(t.pull({ kind: 'list', keys: Float64Array.from([3, 7]) }).parts[0]);
    // Iteration 0 = tasks 1–4; task 5 is iteration 1.
    for (const [task, v] of [
      [1, 1],
      [2, 2],
      [3, 3],
    ] as const)
      assert.equal(t.push(keys, Float32Array.of(v, -v), { worker: 9, task, attempt: 0, seq: 0 }), true);
    assert.equal(t.push(keys, Float32Array.of(1000, 1000), { worker: 6, task: 4, attempt: 0, seq: 0 }), true);
    assert.equal(t.push(keys, Float32Array.of(5, 5), { worker: 9, task: 5, attempt: 0, seq: 0 }), true);
    // Resent: a duplicate. Nothing applied yet; ad-hoc pushes (task 0) apply at once.
    assert.equal(t.push(keys, Float32Array.of(1, -1), { worker: 9, task: 1, attempt: 0, seq: 0 }), false);
    assert.deepEqual(read(), [0, 0]);
    assert.equal(t.stats().held?.pushes, 5);
    // Task 4's lease is taken back: its held push goes; attempt 1 pushes seq 0 again and it is held.
    t.fence(4, 1);
    assert.throws(
      () => t.push(keys, Float32Array.of(1000, 1000), { worker: 6, task: 4, attempt: 0, seq: 0 }),
      isCode('TS_ERR_LEASE_EXPIRED'),
    );
    assert.equal(t.push(keys, Float32Array.of(4, -4), { worker: 7, task: 4, attempt: 1, seq: 0 }), true);
    assert.equal(t.release(0), null);
    assert.deepEqual(Array.from(t.release(1)!), [3, 7]);
    // Median of 1, 2, 3, 4 is 2.5; × 4 pushes.
    assert.deepEqual(read(), [10, -10]);
    assert.deepEqual(t.stats().held, { pushes: 1, bytes: 16 + 8, released: 1, dropped: 1 });
    assert.deepEqual(Array.from(t.release(2)!), [3, 7]);
    assert.deepEqual(read(), [15, -5]);
  });

  it('over a cluster with a replica: task pushes wait for the manager’s CLOCK, then master and replica hold the aggregate', async () => {
    const net = new MemoryNetwork({ seed: 11, maxDelay: 2 });
    const spec = { ...tableSpec(1, 'w', 'sparse', 1 << 20), hold: hold('trimmed-mean', { trim: 0.25 }) };
    const c = await testCluster([spec], { net, replicas: 1 });
    const w = await Worker.connect({ seed: async () => c.mgr.info, dialers: { memory: net.dialer() } });
    try {
      const keys = Float64Array.from({ length: 64 }, (_, i) => i * 16_000);
      const values = [1, 2, 3, 400].map((x) => new Float32Array(64).fill(x));
      await Promise.all(
        values.map((v, i) => w.wait(w.table('w').push(keys, v, { task: { task: i + 1, attempt: 0 } }))),
      );
      assert.deepEqual(Array.from((await w.wait(w.table('w').pull(keys)))!), new Array(64).fill(0));
      await c.mgr.publish(0, 1);
      // Trimmed mean of 1, 2, 3, 400 cutting one from each end: 2.5, × 4.
      assert.deepEqual(Array.from((await w.wait(w.table('w').pull(keys)))!), new Array(64).fill(10));
      // Every replica's copy of its ranges took the aggregate's rows too.
      let tens = 0;
      for (const n of c.nodes)
        for (const x of tableOf(n, 1).pull({ kind: 'list', keys }).parts[0]) if (x === 10) tens++;
      assert.equal(tens, 2 * 64, 'each key on its master and one replica');
    } finally {
      w.close();
      await c.close();
    }
  });
  it('survives the death of a master while it holds: the promoted replica held the pushes too and releases them', async () => {
    const net = new MemoryNetwork({ seed: 12, maxDelay: 2 });
    const spec = { ...tableSpec(1, 'w', 'sparse', 1 << 20), hold: hold('sum') };
    const c = await testCluster([spec], { net, replicas: 1, heartbeatMs: 20, deadAfterMs: 200 });
    const w = await Worker.connect({
      seed: async () => c.mgr.info,
      dialers: { memory: net.dialer() },
      timeoutMs: 5000,
    });
    try {
      const keys = Float64Array.from({ length: 64 }, (_, i) => i * 16_000);
      for (let task = 1; task <= 4; task++)
        await w.wait(w.table('w').push(keys, new Float32Array(64).fill(task), { task: { task, attempt: 0 } }));
      // Every node holds what it masters or replicates: the pushes' frames, down the chain.
      const holding = c.nodes.filter((n) => (tableOf(n, 1).stats().held?.pushes ?? 0) > 0);
      assert.ok(holding.length >= 2);
      const victim = c.nodes.find((n) => n.id === c.mgr.info.ring.nodes[0])!;
      const ringBefore = c.mgr.info.ring.version;
      await victim.close();
      await until(() => c.mgr.info.ring.version > ringBefore, 'a ring without the dead node');
      await c.mgr.publish(0, 1).catch(() => {}); // the dead node does not answer; the others release
      const got = Array.from((await w.wait(w.table('w').pull(keys)))!);
      assert.deepEqual(got, new Array(64).fill(1 + 2 + 3 + 4), 'every acknowledged push is in the aggregate');
    } finally {
      w.close();
      await c.close();
    }
  });
});
