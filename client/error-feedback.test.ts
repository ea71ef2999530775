/**
 * Error feedback (client/error-feedback.ts) on a quadratic, and lossy, deflated pushes and pulls
 * through a real three-node cluster.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestCluster, tableSpec, testCluster } from '../server/node/testkit.ts';
import { type PackedValues, packValues, unpackValues, type ValueCodec } from '../shared/protocol/values.ts';
import { createRng, randomSortedKeys } from '../shared/rng.ts';
import type { NodePart } from '../shared/slicing.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { ErrorFeedback } from './error-feedback.ts';
import { Worker } from './worker.ts';

/** Keys of the quadratic; every 256th (one per Q8 block) is a noisy one. */
const N = 512;
/** The noisy keys' gradient, ±NOISE by turns (stochastic noise that never dies down). */
const NOISE = 5;
const noisy = (i: number) => i % 256 === 0;

/**
 * Gradient descent on f(x) = ½ Σ (x_i − c_i)² over the quiet keys, whose gradients (≤ 0.0135)
 * stay below half a Q8 step of their block (NOISE / 254 ≈ 0.02), set by the noisy key. Every
 * step's gradient goes through `send` (what the "server" adds is what it returns). Returns each
 * quiet key's final distance to its optimum.
 */
function descend(steps: number, send: (g: Float32Array) => Float32Array): number[] {
  const rng = createRng(5);
  const c = Float64Array.from({ length: N }, () => 1 + rng.next());
  const x = new Float64Array(N);
  for (let t = 0; t < steps; t++) {
    const g = Float32Array.from({ length: N }, (_, i) =>
      noisy(i) ? (t % 2 ? NOISE : -NOISE) : -0.009 * (x[i] - c[i]),
    );
    const got = send(g);
    for (let i = 0; i < N; i++) x[i] += got[i];
  }
  const quiet: number[] = [];
  for (let i = 0; i < N; i++) if (!noisy(i)) quiet.push(Math.abs(x[i] - c[i]));
  return quiet;
}

const _wholePart = (n: number): NodePart => ({
  owner: 'n',
  keys: { kind: 'range', begin: 0, end: n },
  runs: [{ at: 0, n }],
  n,
});
const read = (p: PackedValues) => unpackValues(p.kind, p.bytes);

describe('error feedback', () => {
  it('converges on a quadratic to the uncompressed result (within what it still owes), where quantising alone stalls', () => {
    const steps = 3000;
    const max = (d: number[]) => Math.max(...d);
    const exact = max(descend(steps, (g) => g));
    assert.ok(exact < 1e-6, `uncompressed reaches the optimum (${exact})`);
    const feedback = (codec: ValueCodec) => {
      const ef = new ErrorFeedback();
      const sent = new Float32Array(N);
      return max(descend(steps, (g) => read(ef.pack('all', g, codec, sent))));
    };
    // A quiet key owes at most half a Q8 step (NOISE / 254); its iterate lags by at most twice that.
    const q8 = feedback('q8');
    assert.ok(q8 <= (2 * NOISE) / 254, `q8 with feedback: ${q8}`);
    const f16 = feedback('f16');
    assert.ok(f16 < 1e-4, `f16 with feedback: ${f16}`);
    const alone = Math.min(...descend(steps, (g) => read(packValues(g, 'q8'))));
    assert.ok(alone >= 1, `q8 without feedback never moves a quiet key (closest ${alone})`);
  });

  it('the significantly-modified filter: small sums wait in the residual until they add up, and the quadratic still converges', () => {
    const ef = new ErrorFeedback();
    const got = new Float32Array(3);
    read(ef.pack('s', Float32Array.of(0.4, -2, 0.3), 'f32', got, { threshold: 1 }));
    assert.deepEqual(Array.from(got), [0, -2, 0], 'only |v| ≥ 1 goes');
    read(ef.pack('s', Float32Array.of(0.4, 0, 0.3), 'f32', got, { threshold: 1 }));
    assert.deepEqual(Array.from(got), [0, 0, 0], '0.8 and 0.6: still held back');
    read(ef.pack('s', Float32Array.of(0.4, 0, 0.3), 'f32', got, { threshold: 1 }));
    assert.deepEqual(Array.from(got), [Math.fround(Math.fround(0.4 + 0.4) + 0.4), 0, 0], '1.2 goes, 0.9 waits');
    assert.ok(Math.abs(ef.owed() - 0.9) < 1e-6);
    read(ef.pack('s', Float32Array.of(0, 0, 0.3), 'f32', got, { threshold: 1 }));
    assert.ok(Math.abs(got[2] - 1.2) < 1e-6 && ef.owed() < 1e-6, 'nothing owed once sent');
    // On the quadratic: a threshold above every quiet key's gradient still reaches the optimum.
    const f = new ErrorFeedback();
    const sent = new Float32Array(N);
    let skipped = 0;
    const dist = descend(3000, (g) => {
      const p = read(f.pack('all', g, 'f32', sent, { threshold: 0.02 }));
      for (let i = 0; i < N; i++) if (p[i] === 0 && g[i] !== 0) skipped++;
      return p;
    });
    assert.ok(Math.max(...dist) < 0.05, `threshold 0.02 with feedback: ${Math.max(...dist)}`);
    assert.ok(skipped > 3000 * N * 0.5, `most values held back: ${skipped}`);
  });

  it('a filter relative to the root mean square holds back what is small against the rest of the push', () => {
    const ef = new ErrorFeedback();
    const got = new Float32Array(4);
    // RMS of [4, 0.1, −4, 0.2] is ~2.83: at 0.5 × RMS the threshold is ~1.41.
    ef.pack('r', Float32Array.of(4, 0.1, -4, 0.2), 'f32', got, { rms: 0.5 });
    assert.deepEqual(Array.from(got), [4, 0, -4, 0]);
    // Scaled down 100×, the same values are held back the same way: the filter has no units.
    ef.pack('s', Float32Array.of(0.04, 0.001, -0.04, 0.002), 'f32', got, { rms: 0.5 });
    assert.deepEqual(Array.from(got), [0.03999999910593033, 0, -0.03999999910593033, 0]);
    // With an absolute threshold too, the larger of the two applies.
    ef.pack('t', Float32Array.of(4, 0.1, -4, 0.2), 'f32', got, { rms: 0.5, threshold: 5 });
    assert.deepEqual(Array.from(got), [0, 0, 0, 0]);
  });

  it('writes what the receiver reads into `got`, and owes exactly the difference, per stream', () => {
    const ef = new ErrorFeedback();
    const v = Float32Array.of(5, 0.001, -7, 1);
    const got = new Float32Array(4);
    const p = ef.pack('a', v, 'q8', got);
    assert.deepEqual(read(p), got);
    let owed = 0;
    for (let i = 0; i < 4; i++) owed += Math.abs(v[i] - got[i]);
    assert.ok(Math.abs(ef.owed() - owed) < 1e-6);
    // Another stream has a residual of its own; the first stream's is added to its next push.
    ef.pack('b', v, 'q8', new Float32Array(4));
    assert.equal(ef.size, 2);
    const next = new Float32Array(4);
    ef.pack('a', new Float32Array(4), 'q8', next);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(next[i] - (v[i] - got[i])) <= 7 / 127, `key ${i}`);
  });

  it('keeps at most maxFloats residual floats, dropping the least recently pushed streams', () => {
    const ef = new ErrorFeedback(2500);
    const v = Float32Array.from({ length: 1000 }, (_, i) => (i === 0 ? 1000 : 0.001 * i));
    for (const s of ['a', 'b', 'c']) ef.pack(s, v, 'q8', new Float32Array(1000));
    assert.equal(ef.size, 2);
    ef.pack('b', v, 'q8', new Float32Array(1000)); // b is now the most recent
    ef.pack('d', v, 'q8', new Float32Array(1000));
    assert.equal(ef.size, 2);
    assert.ok(ef.owed() > 0);
  });
});

describe('lossy and deflated values through a cluster', () => {
  let c: TestCluster;
  const net = new MemoryNetwork({ seed: 9 });
  before(async () => {
    c = await testCluster([tableSpec(1, 'weights', 'sparse', 2 ** 20, 1, 'sum')], { net, vnodes: 16 });
  });
  after(() => c.close());

  it('a q8, deflated push lands as the worker read it back; F16, deflated pulls cost a fraction', async () => {
    const w = await Worker.connect({ seed: c.seed, dialers: { memory: net.dialer() } });
    try {
      const t = w.table('weights');
      const keys = randomSortedKeys(createRng(4), 20_000, 2 ** 20);
      const g = Float32Array.from({ length: keys.length }, (_, i) => (i % 5 === 0 ? Math.sin(i) : 0));
      const pushed0 = w.bytes.pushed;
      await w.wait(t.push(keys, g));
      const plainPush = w.bytes.pushed - pushed0;
      await w.wait(t.push(keys, g, { codec: 'q8', compress: true }));
      const lossyPush = w.bytes.pushed - pushed0 - plainPush;
      assert.ok(lossyPush * 3 < plainPush, `q8 + deflate ${lossyPush} B vs f32 ${plainPush} B`);
      const exact = (await w.wait(t.pull(keys)))!;
      // The nodes hold g + q8(g): within a Q8 step of 2g, and equal to it where g is 0.
      for (let i = 0; i < keys.length; i++) {
        assert.ok(Math.abs(exact[i] - 2 * g[i]) <= 1 / 127, `key ${keys[i]}`);
        if (g[i] === 0) assert.equal(exact[i], 0);
      }
      const pulled0 = w.bytes.pulled;
      await w.wait(t.pull(keys));
      const plainPull = w.bytes.pulled - pulled0;
      const half = (await w.wait(t.pull(keys, { half: true, compress: true })))!;
      const lossyPull = w.bytes.pulled - pulled0 - plainPull;
      assert.ok(lossyPull * 4 < plainPull, `f16 + deflate ${lossyPull} B vs f32 ${plainPull} B`);
      for (let i = 0; i < keys.length; i++) assert.ok(Math.abs(half[i] - exact[i]) <= Math.abs(exact[i]) / 1024);
    } finally {
      await w.close();
    }
  });

  it('pushes filtered by a threshold land as zeros until their sums reach it, and deflate shrinks them', async () => {
    const w = await Worker.connect({ seed: c.seed, dialers: { memory: net.dialer() } });
    try {
      const t = w.table('weights');
      const keys = randomSortedKeys(createRng(8), 20_000, 2 ** 20);
      const before = (await w.wait(t.pull(keys)))!;
      // One key in ten moves by 1, the rest by 0.1–0.4: below the threshold of 0.5.
      const g = Float32Array.from({ length: keys.length }, (_, i) =>
        i % 10 === 0 ? 1 : 0.1 + 0.3 * Math.abs(Math.sin(i)),
      );
      const p0 = w.bytes.pushed;
      await w.wait(t.push(keys, g, { threshold: 0.5, compress: true }));
      const filtered = w.bytes.pushed - p0;
      const once = (await w.wait(t.pull(keys)))!;
      for (let i = 0; i < keys.length; i++)
        assert.ok(Math.abs(once[i] - before[i] - (i % 10 === 0 ? 1 : 0)) < 1e-5, `key ${keys[i]}: held back`);
      await w.wait(t.push(keys, g, { threshold: 0.5, compress: true })); // the sums 2g: those ≥ 0.5 go
      const twice = (await w.wait(t.pull(keys)))!;
      for (let i = 0; i < keys.length; i++) {
        const want = i % 10 === 0 ? 2 : 2 * g[i] >= 0.5 ? 2 * g[i] : 0;
        assert.ok(Math.abs(twice[i] - before[i] - want) < 1e-5, `key ${keys[i]}`);
      }
      const p1 = w.bytes.pushed;
      await w.wait(t.push(keys, g, { compress: true }));
      assert.ok(filtered * 3 < w.bytes.pushed - p1, `filtered ${filtered} B vs ${w.bytes.pushed - p1} B`);
    } finally {
      await w.close();
    }
  });
});
