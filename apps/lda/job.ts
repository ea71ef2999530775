/**
 * The LDA job (model.ts has the sampler; the paper's second workload): topics of the
 * SpamAssassin corpus's e-mails (their first LDA_MAX_CHARS body characters, tokens as the text
 * applications cut them, server/data/spam-tokens.ts), 10 % of the e-mails held out. Three sum
 * tables: word-topic counts (sparse, K per word id), topic totals, and every training token's
 * assignment. Metrics: `logLoss` is the held-out log-perplexity (nats per token, document
 * completion; perplexity = e^logLoss), `accuracy` is not defined for a topic model and reads 0.
 *
 * Defaults K = 10, α = 0.5, β = 0.05, 10 iterations (one sweep of every shard each). The target,
 * held-out log-perplexity ≤ LDA_TARGET, is what the single-process sampler (bench:apps `local`)
 * reaches in its 5th iteration on 8 shards (7.63; 7.79 after the first, 7.55 after the 10th; docs/results.md round 12).
 */
import { createHash } from 'node:crypto';
import { prepareSpamTokens } from '../../server/data/spam-tokens.ts';
import { decodeShard } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { JobApp, JobDataOptions, PreparedJob } from '../job-contract.ts';
import { checkLda, heldoutLogPerplexity, type LdaConfig, shardTokens, topWords } from './model.ts';

export const LDA_MAX_CHARS = 1000;
export const LDA_DEFAULTS = { topics: 10, alpha: 0.5, beta: 0.05 } as const;
export const LDA_ITERATIONS = 10;
export const LDA_TARGET = 7.65;

const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `lda: ${why}`);

function check(opts: Omit<JobDataOptions, 'job'>): void {
  if (opts.data !== undefined && opts.data !== 'spam')
    throw bad(`data must be spam (the corpus's e-mails), not ${JSON.stringify(opts.data)}`);
  if (opts.examples !== undefined) throw bad('the corpus is used whole: --examples does not apply');
  for (const k of Object.keys(opts.model ?? {}))
    if (!(k in LDA_DEFAULTS)) throw bad(`no model setting ${k} (topics, alpha, beta)`);
  checkLda({ ...LDA_DEFAULTS, ...opts.model, vocab: 1, stride: 1 });
}

async function prepareLda(opts: JobDataOptions): Promise<PreparedJob> {
  check(opts);
  const data = prepareSpamTokens({
    seed: opts.seed,
    shards: opts.shards,
    cacheDir: opts.cacheDir,
    maxChars: LDA_MAX_CHARS,
    heldoutFraction: 0.1,
    words: true,
  });
  const decoded = data.shards.map((b) => decodeShard(b));
  const heldout = decodeShard(data.heldout);
  const words = new Set<number>(heldout.keys);
  for (const s of decoded) for (const k of s.keys) words.add(k);
  const tokens = decoded.map(shardTokens);
  const trainWords = Float64Array.from(new Set(decoded.flatMap((s) => [...s.keys]))).sort();
  const cfg: LdaConfig = checkLda({
    ...LDA_DEFAULTS,
    ...opts.model,
    vocab: words.size,
    stride: Math.max(1, ...tokens),
  });
  const K = cfg.topics;
  const sum = (
    id: number,
    name: string,
    kind: 'sparse' | 'dense',
    keySpace: number,
    valueLength: number,
  ): TableSpec => ({
    job: opts.job,
    id,
    name,
    kind,
    keySpace,
    valueLength,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  });
  const wordTopic = sum(1, 'word-topic', 'sparse', 2 ** 32, K);
  const topics = sum(2, 'topics', 'dense', K, 1);
  const assignments = sum(3, 'assignments', 'dense', decoded.length * cfg.stride, 1);
  const tables = [wordTopic, topics, assignments];
  const total = tokens.reduce((a, b) => a + b, 0);
  return {
    app: 'lda',
    job: opts.job,
    version: createHash('sha256')
      .update(`lda\n${data.version}\n${JSON.stringify(tables)}\n${JSON.stringify(cfg)}`)
      .digest('hex')
      .slice(0, 16),
    shards: data.shards,
    tables,
    iterations: LDA_ITERATIONS,
    target: { accuracy: 0, logLoss: LDA_TARGET },
    model: { ...cfg },
    meta: {
      dataset: { name: 'spam-tokens', label: data.config.corpus, config: data.config },
      documents: decoded.reduce((n, s) => n + s.labels.length, 0),
      heldoutDocuments: heldout.labels.length,
      tokens: total,
      vocab: words.size,
      cached: data.cached,
      prepareMs: data.ms,
    },
    about: [
      `Finds ${K} topics in the public SpamAssassin e-mail corpus (${total} tokens of ${words.size} distinct words in`,
      `${decoded.length} shards) by collapsed Gibbs sampling, the parameter-server paper's second workload: the`,
      "word-topic counts, the topic totals and every token's topic live on the servers, so a tab keeps nothing",
      `between tasks. The goal: held-out log-perplexity ≤ ${LDA_TARGET} (perplexity ${Math.round(Math.exp(LDA_TARGET))}).`,
    ].join(' '),
    pushScopes: (shard) => [
      decoded[shard].keys,
      'whole',
      { begin: shard * cfg.stride, end: shard * cfg.stride + tokens[shard] },
    ],
    async insight(read) {
      const top = topWords(cfg, await read(wordTopic, trainWords), 8);
      return {
        title: `Top words of the ${K} topics (relevance, λ = 0.6)`,
        rows: top.map((ws, k) => [`topic ${k + 1}`, ws.map((w) => data.words?.get(trainWords[w]) ?? '?').join(' ')]),
      };
    },
    async evaluate(read) {
      const [wt, t] = await Promise.all([read(wordTopic, heldout.keys), read(topics, { begin: 0, end: K })]);
      return { accuracy: 0, logLoss: heldoutLogPerplexity(cfg, heldout, wt, t) };
    },
  };
}

/** LDA's job side (job-contract.ts). */
export const ldaJob: JobApp = {
  name: 'lda',
  summary: 'topics of the SpamAssassin corpus by collapsed Gibbs sampling (LDA), counts and assignments on the servers',
  check,
  prepare: prepareLda,
};
