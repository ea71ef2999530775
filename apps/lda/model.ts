/**
 * Latent Dirichlet allocation by collapsed Gibbs sampling (Griffiths and Steyvers 2004; the
 * paper's second workload, Li et al. §5.2), with the counts on the servers:
 *   - `word-topic`: n_wk, K floats per word (a sparse sum table keyed by the word's id);
 *   - `topics`: n_k, the K topic totals (a dense sum table);
 *   - `assignments`: z + 1 of every token of the training corpus (0: not yet assigned), shard s's
 *     tokens at keys [s·stride, s·stride + tokens), in the order the shard lists them.
 * A task pulls its shard's rows of all three, sweeps its tokens once (the first sweep assigns
 * each token a topic drawn from the pulled counts), and pushes what changed: count deltas and
 * assignment deltas, so the tables always hold the counts of the assignments they hold. The tab
 * keeps nothing between tasks. Tasks of one iteration sample from the same counts (the
 * approximate distributed sampler of Newman et al., AD-LDA).
 *
 * Held-out quality by document completion: for each held-out document, its first half's topics
 * are sampled with the word-topic distributions fixed (φ_kw = (n_wk + β)/(n_k + Vβ)), θ_d is
 * estimated from them, and the second half is scored: log-perplexity = −Σ log Σ_k θ_dk φ_kw / N.
 * Pure; runs in Node and in the browser.
 */
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { murmur3Fmix } from '../../shared/hash.ts';
import { createRng, type Rng } from '../../shared/rng.ts';

export type LdaConfig = {
  /** K: topics. */
  topics: number;
  /** Dirichlet prior of the documents' topic mixtures. */
  alpha: number;
  /** Dirichlet prior of the topics' word distributions. */
  beta: number;
  /** V: distinct words of the corpus (the smoothing term Vβ). */
  vocab: number;
  /** Keys of the assignments table per shard (at least its tokens). */
  stride: number;
};

export function checkLda(c: LdaConfig): LdaConfig {
  const int = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  const ok =
    int(c.topics, 2, 256) &&
    c.alpha > 0 &&
    c.alpha <= 100 &&
    c.beta > 0 &&
    c.beta <= 100 &&
    int(c.vocab, 1, 2 ** 32) &&
    int(c.stride, 1, 2 ** 40);
  if (!ok)
    throw new TabshardError(
      'TS_ERR_INVALID_ARGUMENT',
      `lda: topics must be in [2, 256], alpha and beta in (0, 100], vocab and stride positive integers (got ${JSON.stringify(c)})`,
    );
  return c;
}

/** Tokens of a shard: Σ of its counts (each non-zero is a word and how often the document has it). */
export function shardTokens(s: DecodedShard): number {
  let n = 0;
  for (const v of s.val) n += v;
  return n;
}

/** A seed from the pulled assignments: another state, another draw; the same state, the same draw. */
function seedOf(index: number, z: Float32Array): number {
  let h = murmur3Fmix(index + 0x9e3779b9);
  for (let i = 0; i < z.length; i += 7) h = murmur3Fmix(h ^ (z[i] * 2654435761));
  return h;
}

/** Draws k with probability p[k] / Σp (p has `n` entries). */
function draw(rng: Rng, p: Float64Array, n: number): number {
  let sum = 0;
  for (let k = 0; k < n; k++) sum += p[k];
  let u = rng.next() * sum;
  for (let k = 0; k < n - 1; k++) {
    u -= p[k];
    if (u < 0) return k;
  }
  return n - 1;
}

export interface SweepResult {
  /** Δn_wk, K per shard key (shard key order). */
  wordTopic: Float32Array;
  /** Δn_k. */
  topics: Float32Array;
  /** Δ(z + 1) per token. */
  assignments: Float32Array;
  /** Tokens swept. */
  tokens: number;
}

/**
 * One Gibbs sweep over the shard's tokens from the pulled counts: `wordTopic` (K per shard key),
 * `topics` (K), `assignments` (the shard's first `shardTokens` keys; 0 = unassigned). Returns
 * the deltas to push. TS_ERR_VALUE_LENGTH when the pulled arrays do not fit the shard.
 */
export function sweep(
  cfg: LdaConfig,
  s: DecodedShard,
  wordTopic: Float32Array,
  topics: Float32Array,
  assignments: Float32Array,
): SweepResult {
  const K = cfg.topics;
  const tokens = shardTokens(s);
  if (wordTopic.length !== s.keys.length * K || topics.length !== K || assignments.length < tokens)
    throw new TabshardError(
      'TS_ERR_VALUE_LENGTH',
      `lda: pulled ${wordTopic.length}, ${topics.length}, ${assignments.length} values`,
    );
  const nwk = Float64Array.from(wordTopic, (v) => Math.max(0, v));
  const nk = Float64Array.from(topics, (v) => Math.max(0, v));
  const z = assignments.slice(0, tokens);
  const dz = new Float32Array(assignments.length);
  const ndk = new Float64Array(K);
  const p = new Float64Array(K);
  const vb = cfg.vocab * cfg.beta;
  const rng = createRng(seedOf(s.index, z));
  let pos = 0;
  for (let d = 0; d + 1 < s.rowPtr.length; d++) {
    ndk.fill(0);
    let start = pos;
    for (let i = s.rowPtr[d]; i < s.rowPtr[d + 1]; i++)
      for (let c = 0; c < s.val[i]; c++, start++) if (z[start] > 0) ndk[z[start] - 1]++;
    for (let i = s.rowPtr[d]; i < s.rowPtr[d + 1]; i++) {
      const w = s.col[i] * K;
      for (let c = 0; c < s.val[i]; c++, pos++) {
        const old = z[pos] - 1;
        if (old >= 0) {
          ndk[old]--;
          nwk[w + old] = Math.max(0, nwk[w + old] - 1);
          nk[old] = Math.max(0, nk[old] - 1);
        }
        for (let k = 0; k < K; k++) p[k] = ((ndk[k] + cfg.alpha) * (nwk[w + k] + cfg.beta)) / (nk[k] + vb);
        const k = draw(rng, p, K);
        ndk[k]++;
        nwk[w + k]++;
        nk[k]++;
        z[pos] = k + 1;
        dz[pos] = k - old;
      }
    }
  }
  // What changed: the counts of the new assignments less those of the old.
  const dw = new Float32Array(wordTopic.length);
  const dt = new Float32Array(K);
  pos = 0;
  for (let d = 0; d + 1 < s.rowPtr.length; d++)
    for (let i = s.rowPtr[d]; i < s.rowPtr[d + 1]; i++)
      for (let c = 0; c < s.val[i]; c++, pos++) {
        const now = z[pos] - 1;
        const before = now - dz[pos];
        if (before === now) continue;
        dw[s.col[i] * K + now]++;
        dt[now]++;
        if (before >= 0) {
          dw[s.col[i] * K + before]--;
          dt[before]--;
        }
      }
  return { wordTopic: dw, topics: dt, assignments: dz, tokens };
}

/**
 * Held-out log-perplexity (nats per token) by document completion, with φ from the counts:
 * `wordTopic` K per key of `held.keys`, `topics` K. `sweeps` fold-in sweeps over each document's
 * first half (a seeded sampler), then its second half scored.
 */
export function heldoutLogPerplexity(
  cfg: LdaConfig,
  held: DecodedShard,
  wordTopic: Float32Array,
  topics: Float32Array,
  sweeps = 10,
): number {
  const K = cfg.topics;
  const vb = cfg.vocab * cfg.beta;
  const phi = (w: number, k: number) => (Math.max(0, wordTopic[w * K + k]) + cfg.beta) / (Math.max(0, topics[k]) + vb);
  const rng = createRng(1);
  const p = new Float64Array(K);
  const ndk = new Float64Array(K);
  let logLik = 0;
  let scored = 0;
  for (let d = 0; d + 1 < held.rowPtr.length; d++) {
    const words: number[] = [];
    for (let i = held.rowPtr[d]; i < held.rowPtr[d + 1]; i++)
      for (let c = 0; c < held.val[i]; c++) words.push(held.col[i]);
    if (words.length < 2) continue;
    // Interleaved halves: even positions observed, odd ones scored.
    const seen = words.filter((_, i) => i % 2 === 0);
    const test = words.filter((_, i) => i % 2 === 1);
    const z = new Int32Array(seen.length);
    ndk.fill(0);
    for (let i = 0; i < seen.length; i++) {
      z[i] = rng.int(K);
      ndk[z[i]]++;
    }
    for (let it = 0; it < sweeps; it++)
      for (let i = 0; i < seen.length; i++) {
        ndk[z[i]]--;
        for (let k = 0; k < K; k++) p[k] = (ndk[k] + cfg.alpha) * phi(seen[i], k);
        z[i] = draw(rng, p, K);
        ndk[z[i]]++;
      }
    const norm = seen.length + K * cfg.alpha;
    for (const w of test) {
      let pw = 0;
      for (let k = 0; k < K; k++) pw += ((ndk[k] + cfg.alpha) / norm) * phi(w, k);
      logLik += Math.log(pw);
      scored++;
    }
  }
  return scored > 0 ? -logLik / scored : 0;
}

/**
 * The `n` words most relevant to each topic, as indexes of rows of `wordTopic` (K per word):
 * relevance λ·log φ_kw + (1 − λ)·log(φ_kw / p_w) with λ = 0.6 (Sievert and Shirley 2014), which
 * keeps the words every topic shares ("the", "to") from heading every list. Words seen fewer
 * than `minCount` times are left out.
 */
export function topWords(cfg: LdaConfig, wordTopic: Float32Array, n: number, minCount = 20): number[][] {
  const K = cfg.topics;
  const W = wordTopic.length / K;
  const nw = new Float64Array(W);
  const nk = new Float64Array(K);
  let N = 0;
  for (let w = 0; w < W; w++)
    for (let k = 0; k < K; k++) {
      const c = Math.max(0, wordTopic[w * K + k]);
      nw[w] += c;
      nk[k] += c;
      N += c;
    }
  const lambda = 0.6;
  return Array.from({ length: K }, (_, k) => {
    const scored: Array<[number, number]> = [];
    for (let w = 0; w < W; w++) {
      if (nw[w] < minCount) continue;
      const phi = (Math.max(0, wordTopic[w * K + k]) + cfg.beta) / (nk[k] + cfg.vocab * cfg.beta);
      scored.push([w, lambda * Math.log(phi) + (1 - lambda) * Math.log(phi / (nw[w] / N))]);
    }
    return scored
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([w]) => w);
  });
}
