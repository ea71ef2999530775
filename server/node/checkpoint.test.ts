/**
 * Checkpoint files (checkpoint.ts, PROTOCOL.md §5.4): a snapshot written and restored gives the
 * same rows (values and updater state), push counts and at-most-once records; a checkpoint of a
 * ring split over three nodes restores into another group, every node keeping what its chains
 * name; damaged or missing files are refused before anything changes; CHECKPOINT and RESTORE
 * over a connection are admin-only and check their bodies. Every input is seeded.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { decodeObject, encodeJson } from '../../shared/protocol/control.ts';
import { MsgType, type TaskStamp } from '../../shared/protocol/frame.ts';
import { countKeys, type KvKeys } from '../../shared/protocol/kv.ts';
import { Ring } from '../../shared/ring.ts';
import { createRng, type Rng, randomSortedKeys } from '../../shared/rng.ts';
import { RpcPeer } from '../../shared/rpc.ts';
import type { TableSpec } from '../../shared/table.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { codeOf } from '../scheduler/testkit.ts';
import {
  type CheckpointFile,
  checkpointFrames,
  type JobScope,
  readCheckpointFile,
  restoreJob,
  snapshotJob,
  writeCheckpointFile,
} from './checkpoint.ts';
import { ServerNode } from './node.ts';
import { Table } from './table.ts';
import { type TestCluster, tableSpec, testCluster } from './testkit.ts';

const DENSE: TableSpec = {
  // Three pages of 87381⅓ keys (PAGE_FLOATS / 3): keys are cut by page edges; page 1 is never pushed.
  ...tableSpec(1, 'dense', 'dense', 200_000, 3, 'ftrl', { alpha: 0.1, l1: 0.01 }),
  init: { kind: 'uniform', scale: 0.1, seed: 5 },
};
const SPARSE = tableSpec(2, 'sparse', 'sparse', 2 ** 40, 2, 'adagrad', { lr: 0.1 });
const range = (begin: number, end: number): KvKeys => ({ kind: 'range', begin, end });
const list = (keys: Float64Array): KvKeys => ({ kind: 'list', keys });
const stamp = (task: number, attempt: number, seq: number, worker = 1): TaskStamp => ({ worker, task, attempt, seq });
const grads = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => 2 * rng.next() - 1);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabshard-checkpoint-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fresh(...specs: TableSpec[]): Map<number, Table> {
  return new Map(specs.map((s) => [s.id, new Table(s)]));
}

const scope = (tables: Map<number, Table>, job = 0): JobScope => ({ self: 'n1', job, tables, layout: () => null });

/** The code a restore fails with ('ok' if none): its body is checked before it returns, so it may throw. */
const restored = (s: JobScope, files: CheckpointFile[]) =>
  codeOf(Promise.resolve().then(() => restoreJob(s, { files })));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: float ${i} is ${a[i]}, expected ${b[i]}`);
}

/** Seeded stamped pushes on a dense and a sparse table, a fence, and ad-hoc pushes; returns the probes. */
function train(dense: Table, sparse: Table) {
  const rng = createRng(31);
  const d = DENSE.valueLength;
  const page2 = Float64Array.from(randomSortedKeys(rng, 2000, 20_000), (k) => k + 180_000);
  dense.push(range(0, 60_000), grads(rng, 60_000 * d), stamp(5, 0, 0));
  dense.push(list(page2), grads(rng, page2.length * d), stamp(5, 0, 1));
  dense.dedupe.fence(5, 1);
  dense.push(range(50_000, 60_000), grads(rng, 10_000 * d), stamp(5, 1, 2));
  dense.push(range(87_360, 87_381), grads(rng, 21 * d), stamp(0, 0, 3, 7)); // up to the key page 1 cuts
  const k1 = randomSortedKeys(rng, 20_000, 2 ** 40);
  const k2 = randomSortedKeys(rng, 9000, 2 ** 40);
  sparse.push(list(k1), grads(rng, k1.length * 2), stamp(6, 0, 0));
  sparse.push(list(k2), grads(rng, k2.length * 2), stamp(6, 0, 1));
  sparse.push(list(k1), grads(rng, k1.length * 2), null);
  sparse.push(list(k2), grads(rng, k2.length * 2), stamp(0, 0, 12, 7));
  const stored = Float64Array.from(new Set([...k1, ...k2])).sort();
  const probe = Float64Array.from(new Set([...stored, ...randomSortedKeys(rng, 100, 2 ** 40)])).sort();
  return { k2, stored, denseProbe: range(0, DENSE.keySpace), sparseProbe: list(probe) };
}

describe('a checkpoint file round trip', () => {
  it('restores rows, push counts and at-most-once records exactly as they were when the snapshot was taken', async () => {
    const a = fresh(DENSE, SPARSE);
    const [dense, sparse] = [a.get(1)!, a.get(2)!];
    const p = train(dense, sparse);
    const snap = snapshotJob(a.values(), (t) => [[0, t.spec.keySpace]]);
    const want = { dense: dense.rows(p.denseProbe), sparse: sparse.rows(p.sparseProbe) };
    const steps = [dense.steps, sparse.steps];
    // Pushes after the snapshot are not in the file: it was copied when taken.
    dense.push(range(0, 10), new Float32Array(30).fill(1), null);
    sparse.push(list(p.k2), new Float32Array(2 * p.k2.length).fill(1), stamp(6, 0, 2));

    const path = join(dir, 'nested', 'round.ckpt');
    const sum = await writeCheckpointFile(path, snap.pieces);
    const bytes = await readFile(path);
    assert.deepEqual(sum, { bytes: bytes.byteLength, sha256: sha256(bytes) });
    assert.equal(bytes.subarray(0, 8).toString('latin1'), 'TSCKPT01');
    const frames = [...checkpointFrames(await readCheckpointFile(path, sum), path)];
    assert.deepEqual(
      frames.map((m) => `${m.table}:${m.form}`).filter((x, i, all) => x !== all[i - 1]),
      ['1:rows', '1:records', '2:rows', '2:records'],
      'per table its rows frames, then its records frame',
    );
    const denseKeys = dense.exportRange(0, DENSE.keySpace).reduce((n, c) => n + countKeys(c.keys), 0);
    assert.ok(denseKeys < DENSE.keySpace, 'the page never pushed is not saved');
    assert.equal(snap.keys, denseKeys + p.stored.length, 'dense: the allocated pages; sparse: the stored keys');

    const b = fresh(DENSE, SPARSE);
    const reply = await restoreJob(scope(b), { files: [{ path, ...sum }] });
    assert.deepEqual(reply, { node: 'n1', keys: snap.keys, bytes: sum.bytes });
    const [d2, s2] = [b.get(1)!, b.get(2)!];
    assertSameBits(d2.rows(p.denseProbe), want.dense, 'dense rows');
    assertSameBits(s2.rows(p.sparseProbe), want.sparse, 'sparse rows');
    assert.deepEqual([d2.steps, s2.steps], steps);
    assert.equal(s2.stats().keys, p.stored.length);

    // The records came along: seen stamps are duplicates, the fence holds, new stamps apply.
    const before = d2.rows(range(0, 10));
    assert.equal(d2.push(range(0, 10), new Float32Array(30).fill(9), stamp(5, 1, 2)), false);
    assert.equal(d2.push(range(0, 10), new Float32Array(30).fill(9), stamp(0, 0, 3, 7)), false);
    assert.throws(() => d2.push(range(0, 10), new Float32Array(30), stamp(5, 0, 9)), { code: 'TS_ERR_LEASE_EXPIRED' });
    assertSameBits(d2.rows(range(0, 10)), before, 'refused and duplicate pushes changed nothing');
    assert.equal(s2.push(list(p.k2), new Float32Array(2 * p.k2.length), stamp(6, 0, 1)), false);
    // The copy then evolves bit for bit like a table restored the same way from the original state.
    const g = grads(createRng(77), p.stored.length * 2);
    assert.equal(s2.push(list(p.stored), g, stamp(6, 0, 3)), true);
    const ref = fresh(SPARSE).get(2)!;
    ref.writeRows(p.sparseProbe, want.sparse);
    ref.advanceSteps(steps[1]);
    ref.push(list(p.stored), g, null);
    assertSameBits(s2.rows(p.sparseProbe), ref.rows(p.sparseProbe), 'sparse rows after one more push');
  });

  it('writes a records frame for a table with no saved keys', async () => {
    const a = fresh(SPARSE);
    a.get(2)!.dedupe.fence(3, 4);
    const snap = snapshotJob(a.values(), () => []);
    const path = join(dir, 'empty.ckpt');
    const sum = await writeCheckpointFile(path, snap.pieces);
    const frames = [...checkpointFrames(await readCheckpointFile(path, sum))];
    assert.deepEqual(
      frames.map((m) => m.form),
      ['records'],
    );
    const b = fresh(SPARSE);
    await restoreJob(scope(b), { files: [{ path, ...sum }] });
    assert.throws(() => b.get(2)!.push(list(Float64Array.of(1)), new Float32Array(2), stamp(3, 3, 0)), {
      code: 'TS_ERR_LEASE_EXPIRED',
    });
  });
});

describe('damaged, missing and foreign checkpoint files', () => {
  let good: CheckpointFile;
  let bytes: Uint8Array;
  before(async () => {
    const a = fresh(DENSE, SPARSE);
    train(a.get(1)!, a.get(2)!);
    good = {
      path: join(dir, 'good.ckpt'),
      ...(await writeCheckpointFile(
        join(dir, 'good.ckpt'),
        snapshotJob(a.values(), (t) => [[0, t.spec.keySpace]]).pieces,
      )),
    };
    bytes = new Uint8Array(await readFile(good.path));
  });

  /** Restores `files` into fresh tables: the error code, and whether the tables are still untouched. */
  async function restoreCode(files: CheckpointFile[], tables = fresh(DENSE, SPARSE), job = 0) {
    const code = await restored(scope(tables, job), files);
    const blank = fresh(DENSE, SPARSE);
    for (const [id, t] of tables) {
      assert.equal(t.steps, 0, `table ${id}: push count unchanged`);
      assert.equal(t.stats().keys, 0, `table ${id}: nothing written`);
      assertSameBits(t.rows(range(0, 1000)), blank.get(id)!.rows(range(0, 1000)), `table ${id}: rows unchanged`);
      assert.equal(t.dedupe.taskCount, 0, `table ${id}: no records merged`);
    }
    return code;
  }

  async function damaged(
    name: string,
    change: (b: Uint8Array) => Uint8Array,
    sameSum = false,
  ): Promise<CheckpointFile> {
    const b = change(bytes.slice());
    const path = join(dir, name);
    await writeFile(path, b);
    return sameSum
      ? { path, bytes: b.byteLength, sha256: sha256(b) }
      : { path, bytes: good.bytes, sha256: good.sha256 };
  }

  it('refuses a file with one byte flipped, with nothing changed, even listed after a good one', async () => {
    const bad = await damaged('flipped.ckpt', (b) => {
      b[Math.floor(b.length / 2)] ^= 0x10;
      return b;
    });
    assert.equal(await restoreCode([good, bad]), 'TS_ERR_CHECKPOINT_CORRUPT');
    await assert.rejects(readCheckpointFile(bad.path, bad), /sha256/);
  });

  it('refuses a truncated file', async () => {
    const cut = await damaged('cut.ckpt', (b) => b.subarray(0, b.length - 100));
    assert.equal(await restoreCode([good, cut]), 'TS_ERR_CHECKPOINT_CORRUPT');
    await assert.rejects(readCheckpointFile(cut.path, cut), /bytes, expected/);
  });

  it('refuses a file whose size and checksum match but whose magic, record lengths or frames are bad', async () => {
    const poke = (at: number, v: number) => (b: Uint8Array) => {
      b[at] = v;
      return b;
    };
    const cases: Array<[string, (b: Uint8Array) => Uint8Array]> = [
      ['magic', poke(3, 0x41)],
      ['record length', poke(11, 0x7f)], // the first record's length, now past the end
      ['frame type', poke(13, 0x7f)],
      [
        'trailing bytes',
        (b) => {
          const out = new Uint8Array(b.length + 2);
          out.set(b);
          return out;
        },
      ],
    ];
    for (const [what, change] of cases) {
      const f = await damaged(`${what.replace(' ', '-')}.ckpt`, change, true);
      assert.equal(await restoreCode([good, f]), 'TS_ERR_CHECKPOINT_CORRUPT', what);
    }
  });

  it('answers a missing file TS_ERR_CHECKPOINT_IO', async () => {
    const missing = { ...good, path: join(dir, 'no-such.ckpt') };
    assert.equal(await restoreCode([good, missing]), 'TS_ERR_CHECKPOINT_IO');
    await assert.rejects(readCheckpointFile(missing.path, missing), { code: 'TS_ERR_CHECKPOINT_IO' });
  });

  it('refuses a file of another job, or one naming a table this node lacks, before writing anything', async () => {
    assert.equal(await restoreCode([good], fresh(DENSE, SPARSE), 4), 'TS_ERR_CHECKPOINT_CORRUPT');
    assert.equal(await restoreCode([good], fresh(DENSE)), 'TS_ERR_UNKNOWN_TABLE');
    assert.equal(await restored(scope(new Map()), [good]), 'TS_ERR_UNKNOWN_JOB');
  });

  it('refuses a file written for tables of another shape', async () => {
    const other = { ...DENSE, valueLength: 2 };
    assert.equal(await restored(scope(fresh(other, SPARSE)), [good]), 'TS_ERR_VALUE_LENGTH');
  });
});

/** The table `id` of job 0 on a node (tests look at rows the wire does not carry). */
const tableOf = (n: ServerNode, id: number) => (n as unknown as { table(job: number, id: number): Table }).table(0, id);

async function admin(net: MemoryNetwork, node: string, token?: string): Promise<RpcPeer> {
  const peer = new RpcPeer(await net.dialer().dial(`memory://${node}`));
  await peer.call((id) => encodeJson(MsgType.HELLO, id, { role: 'admin', ...(token ? { token } : {}) }));
  return peer;
}

describe('a checkpoint of a ring split over three nodes (k = 1)', () => {
  const TABLES = [
    tableSpec(1, 'dense', 'dense', 100_000, 1, 'adagrad', { lr: 0.1 }),
    tableSpec(2, 'sparse', 'sparse', 2 ** 40, 2, 'ftrl', { alpha: 0.1, l1: 0.01 }),
  ];
  const sparseKeys = randomSortedKeys(createRng(8), 5000, 2 ** 40);
  const ask = (ti: number) => (ti === 0 ? { begin: 0, end: TABLES[0].keySpace } : sparseKeys);
  let src: TestCluster;
  let w: Worker;
  let files: CheckpointFile[];

  before(async () => {
    const net = new MemoryNetwork({ seed: 21, maxDelay: 3 });
    src = await testCluster(TABLES, { net, replicas: 1 });
    w = await Worker.connect({ seed: 'memory://n1', dialers: { memory: net.dialer() }, workerId: 4 });
    const rng = createRng(9);
    for (let r = 0; r < 4; r++) {
      w.setTask(r + 1, 0);
      const [n, m] = [60_000 + 10_000 * r, 2000 + 1000 * r];
      await Promise.all([
        w.wait(w.table('dense').push({ begin: 0, end: n }, grads(rng, n))),
        w.wait(w.table('sparse').push(sparseKeys.subarray(0, m), grads(rng, 2 * m))),
      ]);
    }
    files = [];
    for (const n of src.nodes) {
      const peer = await admin(net, n.id);
      const path = join(dir, 'split', `${n.id}.ckpt`);
      const reply = decodeObject(await peer.call((id) => encodeJson(MsgType.CHECKPOINT, id, { path }, 0)));
      assert.deepEqual(Object.keys(reply), ['node', 'path', 'bytes', 'sha256', 'keys', 'tables']);
      assert.deepEqual([reply.node, reply.path, reply.tables], [n.id, path, 2]);
      files.push({ path, bytes: reply.bytes as number, sha256: reply.sha256 as string });
      peer.close();
    }
  });
  after(async () => {
    w?.close();
    await src?.close();
  });

  it('each node saves exactly the keys it masters', async () => {
    const ring = Ring.fromJSON(src.mgr.info.ring);
    const saved: number[][] = [[], []];
    for (const [i, f] of files.entries())
      for (const m of checkpointFrames(await readCheckpointFile(f.path, f), f.path)) {
        if (m.form !== 'rows') continue;
        const shape = TABLES[m.table - 1];
        const owners =
          m.keys.kind === 'range'
            ? ring.sliceRange(shape, m.keys.begin, m.keys.end).map((x) => x.owner)
            : m.keys.kind === 'list'
              ? [...m.keys.keys].map((k) => ring.owner(shape, k))
              : assert.fail(`a ${m.keys.kind} key segment`);
        assert.ok(
          owners.every((o) => o === src.nodes[i].id),
          `${src.nodes[i].id} saves only keys it masters`,
        );
        if (m.keys.kind === 'list') saved[1].push(...m.keys.keys);
        else if (m.keys.kind === 'range') for (let k = m.keys.begin; k < m.keys.end; k++) saved[0].push(k);
      }
    const sorted = (a: number[]) => a.sort((x, y) => x - y);
    assert.deepEqual(sorted(saved[1]), [...sparseKeys], 'every stored sparse key once');
    assert.deepEqual(
      sorted(saved[0]),
      Array.from({ length: 100_000 }, (_, k) => k),
      'every dense key once',
    );
  });

  for (const [label, opts] of [
    ['three other nodes on another ring, k = 0', { ids: ['m1', 'm2', 'm3'], vnodes: 5, replicas: 0 }],
    ['two nodes, k = 1', { ids: ['m1', 'm2'], replicas: 1 }],
  ] as const)
    it(`restores into ${label}: keys read as at their old masters, each node keeps only what its chains name`, async () => {
      const net = new MemoryNetwork({ seed: 22, maxDelay: 3 });
      const dst = await testCluster(TABLES, { net, ...opts, ids: [...opts.ids] });
      const w2 = await Worker.connect({ seed: 'memory://m1', dialers: { memory: net.dialer() }, workerId: 5 });
      try {
        for (const n of dst.nodes) {
          const peer = await admin(net, n.id);
          const reply = decodeObject(await peer.call((id) => encodeJson(MsgType.RESTORE, id, { files }, 0)));
          const bytes = files.reduce((t, f) => t + f.bytes, 0);
          assert.deepEqual(reply, { node: n.id, keys: 100_000 + sparseKeys.length, bytes }, 'keys of every file');
          peer.close();
        }
        const srcRing = Ring.fromJSON(src.mgr.info.ring);
        const dstRing = Ring.fromJSON(dst.mgr.info.ring);
        for (const [ti, spec] of TABLES.entries()) {
          const blank = new Table(spec);
          // The rows each key had at its master in the checkpointed group.
          const want = new Table(spec);
          for (const n of src.nodes)
            for (const s of srcRing.ranges(spec).filter((x) => x.owner === n.id))
              for (const c of tableOf(n, spec.id).exportRange(s.begin, s.end)) want.writeRows(c.keys, c.rows);
          for (const r of dstRing.chainRanges(spec, opts.replicas).ranges) {
            const keys = ti === 0 ? range(r.begin, r.end) : list(sparseKeys.filter((k) => k >= r.begin && k < r.end));
            for (const n of dst.nodes) {
              const got = tableOf(n, spec.id).rows(keys);
              const what = `${n.id}, [${r.begin}, ${r.end}) of ${spec.name}`;
              if (r.chain.includes(n.id)) assertSameBits(got, want.rows(keys), `${what}: restored`);
              else assertSameBits(got, blank.rows(keys), `${what}: dropped`);
            }
          }
          const steps = Math.max(...src.nodes.map((n) => tableOf(n, spec.id).steps));
          for (const n of dst.nodes) assert.equal(tableOf(n, spec.id).steps, steps, `${n.id} ${spec.name} steps`);
          // Through the workers: the restored group serves the values the old one does.
          const now = await w2.wait(w2.table(spec.name).pull(ask(ti)));
          const then = await w.wait(w.table(spec.name).pull(ask(ti)));
          assertSameBits(now!, then!, `${spec.name} pulled from the restored group`);
        }
        if (opts.replicas === 0) {
          const held = dst.nodes.map((n) => tableOf(n, 2).stats().keys);
          assert.equal(
            held.reduce((a, b) => a + b),
            sparseKeys.length,
            `each stored key on one node only (${held})`,
          );
        }
      } finally {
        w2.close();
        await dst.close();
      }
    });
});

describe('CHECKPOINT and RESTORE over a connection', () => {
  const TOKEN = 'checkpoint-token';
  const net = new MemoryNetwork({ seed: 5, maxDelay: 2 });
  const node = new ServerNode('solo', { adminToken: TOKEN });
  before(() => {
    node.listen(net.listen('solo'));
    node.defineTable(SPARSE);
    tableOf(node, 2).push(list(Float64Array.of(3, 9, 2 ** 33)), Float32Array.of(1, 2, 3, 4, 5, 6), stamp(2, 0, 0));
  });
  after(() => node.close());

  it('refuses both without an admin HELLO when the node has a token', async () => {
    const peer = new RpcPeer(await net.dialer().dial('memory://solo'));
    const path = join(dir, 'solo.ckpt');
    assert.equal(await codeOf(peer.call((id) => encodeJson(MsgType.CHECKPOINT, id, { path }))), 'TS_ERR_FORBIDDEN');
    const files = [{ path, bytes: 8, sha256: '0'.repeat(64) }];
    assert.equal(await codeOf(peer.call((id) => encodeJson(MsgType.RESTORE, id, { files }))), 'TS_ERR_FORBIDDEN');
    peer.close();
  });

  it('checks the bodies and the job, writes and restores for an admin', async () => {
    const peer = await admin(net, 'solo', TOKEN);
    const call = (type: MsgType, body: unknown, job = 0) => peer.call((id) => encodeJson(type, id, body, job));
    const checkpoint = (body: unknown, job = 0) => codeOf(call(MsgType.CHECKPOINT, body, job));
    assert.equal(await checkpoint({ path: 'relative/solo.ckpt' }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await checkpoint({ path: '' }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await checkpoint({}), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await checkpoint({ path: join(dir, 'x.ckpt') }, 3), 'TS_ERR_UNKNOWN_JOB');
    const path = join(dir, 'solo', 'solo.ckpt');
    const reply = decodeObject(await call(MsgType.CHECKPOINT, { path }));
    const bytes = await readFile(path);
    assert.deepEqual(reply, { node: 'solo', path, bytes: bytes.byteLength, sha256: sha256(bytes), keys: 3, tables: 1 });

    const restore = (body: unknown) => codeOf(call(MsgType.RESTORE, body));
    const file = { path, bytes: bytes.byteLength, sha256: reply.sha256 };
    assert.equal(await restore({ files: [] }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await restore({ files: [{ ...file, path: 'solo.ckpt' }] }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await restore({ files: [{ ...file, sha256: 'abc' }] }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await restore({ files: [{ ...file, bytes: -1 }] }), 'TS_ERR_FRAME_MALFORMED');
    assert.equal(await restore({ files: [{ ...file, path: join(dir, 'gone.ckpt') }] }), 'TS_ERR_CHECKPOINT_IO');
    assert.equal(await restore({ files: [{ ...file, bytes: file.bytes + 1 }] }), 'TS_ERR_CHECKPOINT_CORRUPT');
    // Restoring its own file onto the same table is a no-op for the rows: they are written as they are.
    const rows = tableOf(node, 2).rows(list(Float64Array.of(3, 9, 2 ** 33)));
    assert.deepEqual(decodeObject(await call(MsgType.RESTORE, { files: [file] })), {
      node: 'solo',
      keys: 3,
      bytes: bytes.byteLength,
    });
    assertSameBits(tableOf(node, 2).rows(list(Float64Array.of(3, 9, 2 ** 33))), rows, 'rows');
    assert.equal(decodeObject(await call(MsgType.STATS, {})).node, 'solo', 'still serving');
    peer.close();
  });
});
