// The LDA sampler's math: count deltas that match the assignments exactly, the first sweep
// assigning every token, topics that separate on a corpus with two vocabularies, and the
// held-out log-perplexity of a model that knows nothing (log V, exactly).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildShard, type DecodedShard } from '../../shared/apps/shard.ts';
import { createRng } from '../../shared/rng.ts';
import { heldoutLogPerplexity, type LdaConfig, shardTokens, sweep } from './model.ts';

/** `docs` documents of 30 tokens, each from one of two disjoint vocabularies of 20 words (ids 100+). */
function twoTopics(seed: number, docs: number, index = 0): DecodedShard {
  const rng = createRng(seed);
  const rows = Array.from({ length: docs }, (_, d) => {
    const counts = new Map<number, number>();
    for (let t = 0; t < 30; t++) {
      const w = 100 + (d % 2) * 20 + rng.int(20);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const keys = Float64Array.from(counts.keys()).sort();
    return { keys, values: Float32Array.from(keys, (k) => counts.get(k)!) };
  });
  return buildShard(index, rows, new Uint8Array(docs));
}

const cfg: LdaConfig = { topics: 2, alpha: 0.5, beta: 0.1, vocab: 40, stride: 10_000 };

/** The counts of assignments `z` (z + 1 per token; 0 none) of shard `s`. */
function countsOf(s: DecodedShard, z: Float32Array, K: number) {
  const wt = new Float32Array(s.keys.length * K);
  const t = new Float32Array(K);
  let pos = 0;
  for (let i = 0; i < s.col.length; i++)
    for (let c = 0; c < s.val[i]; c++, pos++)
      if (z[pos] > 0) {
        wt[s.col[i] * K + z[pos] - 1]++;
        t[z[pos] - 1]++;
      }
  return { wt, t };
}

/** Runs `n` sweeps of one shard as a lone worker would: pull, sweep, apply the deltas. */
function train(s: DecodedShard, n: number) {
  const K = cfg.topics;
  let wt = new Float32Array(s.keys.length * K);
  let t = new Float32Array(K);
  let z = new Float32Array(shardTokens(s));
  for (let i = 0; i < n; i++) {
    const r = sweep(cfg, s, wt, t, z);
    wt = wt.map((v, j) => v + r.wordTopic[j]);
    t = t.map((v, j) => v + r.topics[j]);
    z = z.map((v, j) => v + r.assignments[j]);
  }
  return { wt, t, z };
}

describe('LDA sampler', () => {
  it("assigns every token in the first sweep, and its deltas are exactly the new assignments' counts", () => {
    const s = twoTopics(1, 40);
    const first = sweep(
      cfg,
      s,
      new Float32Array(s.keys.length * 2),
      new Float32Array(2),
      new Float32Array(shardTokens(s)),
    );
    assert.equal(first.tokens, 1200);
    assert.ok(first.assignments.every((v) => v === 1 || v === 2));
    const c = countsOf(s, first.assignments, 2);
    assert.deepEqual(first.wordTopic, c.wt);
    assert.deepEqual(first.topics, c.t);
    // A later sweep: the deltas carry the pulled counts to those of the new assignments.
    const { wt, t, z } = train(s, 3);
    const r = sweep(cfg, s, wt, t, z);
    const next = z.map((v, j) => v + r.assignments[j]);
    const after = countsOf(s, next, 2);
    assert.deepEqual(
      wt.map((v, j) => v + r.wordTopic[j]),
      after.wt,
    );
    assert.deepEqual(
      t.map((v, j) => v + r.topics[j]),
      after.t,
    );
    assert.deepEqual(sweep(cfg, s, wt, t, z), r, 'the same pulled state draws the same sweep');
  });

  it('separates two vocabularies into two topics, and lowers the held-out log-perplexity', () => {
    const s = twoTopics(2, 60);
    const held = twoTopics(3, 20);
    const { wt, t } = train(s, 20);
    // Each word's counts sit (almost) all in one topic, the same one for all words of a vocabulary.
    const topicOf = (k: number) => {
      const i = s.keys.indexOf(k);
      return wt[i * 2] > wt[i * 2 + 1] ? 0 : 1;
    };
    const purity = (k: number) => {
      const i = s.keys.indexOf(k);
      return Math.max(wt[i * 2], wt[i * 2 + 1]) / (wt[i * 2] + wt[i * 2 + 1]);
    };
    const a = Array.from({ length: 20 }, (_, i) => 100 + i).filter((k) => s.keys.includes(k));
    const b = Array.from({ length: 20 }, (_, i) => 120 + i).filter((k) => s.keys.includes(k));
    assert.ok(a.every((k) => topicOf(k) === topicOf(a[0])) && b.every((k) => topicOf(k) === topicOf(b[0])));
    assert.notEqual(topicOf(a[0]), topicOf(b[0]));
    assert.ok([...a, ...b].every((k) => purity(k) > 0.95));
    // Held out: what the trained counts say of the held-out words against a model that knows nothing.
    const rows = Float32Array.from({ length: held.keys.length * 2 }, (_, j) => {
      const i = s.keys.indexOf(held.keys[j >> 1]);
      return i < 0 ? 0 : wt[i * 2 + (j & 1)];
    });
    const trained = heldoutLogPerplexity(cfg, held, rows, t);
    const blank = heldoutLogPerplexity(cfg, held, new Float32Array(rows.length), new Float32Array(2));
    assert.ok(Math.abs(blank - Math.log(cfg.vocab)) < 1e-9, `knowing nothing: log V, got ${blank}`);
    assert.ok(trained < blank - 0.5, `trained ${trained} vs ${blank}`);
  });

  it('refuses pulled values that do not fit the shard', () => {
    const s = twoTopics(4, 4);
    assert.throws(
      () => sweep(cfg, s, new Float32Array(3), new Float32Array(2), new Float32Array(shardTokens(s))),
      /TS_ERR_VALUE_LENGTH|pulled/,
    );
  });
});
