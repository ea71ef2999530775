/**
 * LDA's worker side (model.ts): a task pulls its shard's word-topic rows (`tables[0]`, K floats
 * per word), the topic totals (`tables[1]`) and its tokens' assignments (`tables[2]`, keys
 * [shard·stride, shard·stride + tokens)), sweeps its tokens once and pushes the deltas. `model`
 * = {topics, alpha, beta, vocab, stride}.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { WorkerApp } from '../contract.ts';
import { checkLda, type LdaConfig, shardTokens, sweep } from './model.ts';

/** The sampler's settings from a job's model fields. */
export function ldaConfig(m: Record<string, number> | undefined): LdaConfig {
  const n = (k: string) => m?.[k] ?? Number.NaN;
  return checkLda({ topics: n('topics'), alpha: n('alpha'), beta: n('beta'), vocab: n('vocab'), stride: n('stride') });
}

export const ldaWorker: WorkerApp = {
  name: 'lda',
  bind(info) {
    if (info.tables.length < 3)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'app: lda needs word-topic, topics and assignments tables');
    const cfg = ldaConfig(info.model);
    const [wordTopic, topics, assignments] = info.tables;
    return {
      pulls: (shard) => [
        { table: wordTopic, keys: shard.keys },
        { table: topics, keys: { begin: 0, end: cfg.topics } },
        {
          table: assignments,
          keys: { begin: shard.index * cfg.stride, end: shard.index * cfg.stride + shardTokens(shard) },
        },
      ],
      async gradient(_tf, shard, values) {
        const r = sweep(cfg, shard, values[0], values[1], values[2]);
        return { grads: [r.wordTopic, r.topics, r.assignments], loss: 0, examples: r.tokens };
      },
    };
  },
};
