/**
 * Checkpoints through the server manager (real ServerNodes, real files in a temporary data
 * directory, the SQLite store): a job's tables are saved by every node and restored into a new
 * group of another size; a corrupt newest checkpoint falls back to the one before with a
 * message; only the newest KEEP are kept; the store keeps grants until a checkpoint forgets them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import { tableSpec, testCluster } from '../node/testkit.ts';
import { Checkpoints, KEEP } from './checkpoints.ts';
import { DurableStore } from './store.ts';

const TABLES = [
  tableSpec(1, 'dense', 'dense', 1 << 14, 1, 'sum'),
  tableSpec(2, 'ada', 'sparse', 2 ** 40, 2, 'adagrad', { lr: 0.1 }),
];
const KEYS = Float64Array.from({ length: 500 }, (_, i) => i * 2_199_023_255 + 7);
const progress = (n: number) => ({
  done: Array.from({ length: n }, (_, i) => [i + 1, 0, 9] as [number, number, number]),
  started: [],
});

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'tabshard-ckpt-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function pushSome(c: Awaited<ReturnType<typeof testCluster>>, net: MemoryNetwork, rounds: number) {
  const w = await Worker.connect({ seed: async () => c.mgr.info, dialers: { memory: net.dialer() }, workerId: 5 });
  try {
    for (let r = 0; r < rounds; r++) {
      const g = Float32Array.from({ length: 2 * KEYS.length }, (_, i) => ((i * 7919 + r * 104729) % 1000) / 500 - 1);
      await Promise.all([
        w.wait(w.table('dense').push({ begin: 0, end: 1 << 14 }, new Float32Array(1 << 14).fill(r + 1))),
        w.wait(w.table('ada').push(KEYS, g)),
      ]);
    }
  } finally {
    w.close();
  }
}

const read = async (c: Awaited<ReturnType<typeof testCluster>>) => ({
  dense: Array.from(await c.mgr.pull(0, 1, { begin: 0, end: 1 << 14 })),
  ada: Array.from(await c.mgr.pull(0, 2, KEYS)),
});

describe('checkpoints in a data directory', () => {
  it('every node saves what it masters; a group of another size restores all of it', async () => {
    const dir = tempDir();
    const store = DurableStore.open(dir);
    const net = new MemoryNetwork({ seed: 3, maxDelay: 2 });
    const c = await testCluster(TABLES, { net, replicas: 1 });
    let want: Awaited<ReturnType<typeof read>>;
    let wantNext: Awaited<ReturnType<typeof read>>;
    try {
      await pushSome(c, net, 3);
      want = await read(c);
      const cps = new Checkpoints(dir, store, c.mgr);
      const taken = await cps.take(0, 3, progress(6), TABLES);
      assert.equal(taken.seq, 1);
      assert.ok(existsSync(join(dir, 'jobs', '0', '1', 'manifest.json')));
      for (const n of ['n1', 'n2', 'n3']) assert.ok(existsSync(join(dir, 'jobs', '0', '1', `${n}.ckpt`)));
      assert.deepEqual(store.checkpoints(0)[0].progress, progress(6));
      await pushSome(c, net, 1);
      wantNext = await read(c);
    } finally {
      await c.close();
    }
    // The whole group is gone; a new one of two nodes (another ring) restores the checkpoint.
    const net2 = new MemoryNetwork({ seed: 4, maxDelay: 2 });
    const c2 = await testCluster(TABLES, { net: net2, replicas: 1, ids: ['m1', 'm2'] });
    try {
      const cps = new Checkpoints(dir, store, c2.mgr);
      const u = await cps.latestUsable(0);
      assert.ok(u);
      assert.equal(u.manifest.iteration, 3);
      await cps.restore(0, u);
      assert.deepEqual(await read(c2), want, 'every value restored, whichever node masters it now');
      // The updater state came back too: the same next push gives what it gave the first group.
      await pushSome(c2, net2, 1);
      assert.deepEqual(await read(c2), wantNext, 'AdaGrad accumulators restored');
    } finally {
      await c2.close();
      store.close();
    }
  });

  it('a corrupt newest checkpoint is named and the one before is used; only the newest are kept', async () => {
    const dir = tempDir();
    const store = DurableStore.open(dir);
    const net = new MemoryNetwork({ seed: 5, maxDelay: 2 });
    const c = await testCluster(TABLES, { net, replicas: 1 });
    const said: string[] = [];
    try {
      const cps = new Checkpoints(dir, store, c.mgr, (l) => said.push(l));
      const values: Array<Awaited<ReturnType<typeof read>>> = [];
      for (let i = 1; i <= KEEP + 1; i++) {
        await pushSome(c, net, 1);
        values.push(await read(c));
        await cps.take(0, i, progress(i), TABLES);
      }
      assert.deepEqual(
        store.checkpoints(0).map((x) => x.seq),
        [KEEP + 1, KEEP],
        'older checkpoints are dropped',
      );
      assert.equal(existsSync(join(dir, 'jobs', '0', '1')), false);
      // Flip one byte of the newest checkpoint's n2 file.
      const f = join(dir, 'jobs', '0', `${KEEP + 1}`, 'n2.ckpt');
      const b = readFileSync(f);
      b[b.length >> 1] ^= 0xff;
      writeFileSync(f, b);
      const u = await cps.latestUsable(0);
      assert.equal(u?.checkpoint.seq, KEEP);
      assert.equal(said.length, 1);
      assert.match(said[0], new RegExp(`checkpoint ${KEEP + 1} of job 0 .*n2\\.ckpt.*trying the one before`));
      // A truncated manifest too: then there is nothing usable left but the older one's.
      writeFileSync(join(dir, 'jobs', '0', `${KEEP}`, 'manifest.json'), '{"sha256":');
      assert.equal(await cps.latestUsable(0), null);
      assert.match(said[2], /manifest\.json: not JSON/);
    } finally {
      await c.close();
      store.close();
    }
  });

  it('the store keeps the leases granted since the last checkpoint, and its jobs across reopening', () => {
    const dir = tempDir();
    let store = DurableStore.open(dir);
    store.saveJob({ job: 1, name: 'spam', request: { app: 'logreg', data: { shards: 4 } }, state: 'running' });
    store.granted(1, 3, 0);
    store.granted(1, 3, 2);
    store.granted(1, 3, 1);
    store.granted(1, 5, 0);
    store.ringVersion = 7;
    store.ringVersion = 4;
    store.close();
    store = DurableStore.open(dir);
    assert.deepEqual(store.grants(1), [
      [3, 2],
      [5, 0],
    ]);
    assert.equal(store.ringVersion, 7, 'the ring version only rises');
    assert.deepEqual(
      store.jobs().map((j) => [j.job, j.state, j.request]),
      [[1, 'running', { app: 'logreg', data: { shards: 4 } }]],
    );
    const mark = store.grantsMark();
    store.granted(1, 6, 0); // after the cut, before the checkpoint is recorded
    store.addCheckpoint({ job: 1, seq: 1, iteration: 2, dir: '/x', bytes: 10, progress: progress(2) }, mark);
    assert.deepEqual(store.grants(1), [[6, 0]], 'a checkpoint forgets the grants before its cut, not after');
    store.setJobState(1, 'done');
    assert.equal(store.jobs()[0].state, 'done');
    store.close();
  });
});
