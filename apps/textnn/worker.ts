/**
 * The text classifier's worker side (model.ts); `model` = {dim, hidden}. Two tables: `tables[0]`
 * the embedding rows (dim floats per key) of the shard's keys, sparse; `tables[1]` the dense
 * layers, all of them, as one key range. The gradient is gradient.ts's.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { WorkerApp } from '../contract.ts';
import { textnnGradient } from './gradient.ts';
import { checkTextnnConfig, denseSize, type TextnnConfig } from './model.ts';

export const textnnWorker: WorkerApp = {
  name: 'textnn',
  bind(info) {
    if (info.tables.length < 2)
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'app: textnn needs an embedding and a dense table');
    const cfg: TextnnConfig = { dim: info.model?.dim ?? Number.NaN, hidden: info.model?.hidden ?? Number.NaN };
    checkTextnnConfig(cfg);
    const [embedding, dense] = info.tables;
    const P = denseSize(cfg);
    return {
      pulls: (shard) => [
        { table: embedding, keys: shard.keys },
        { table: dense, keys: { begin: 0, end: P } },
      ],
      async gradient(tf, shard, values) {
        const g = await textnnGradient(tf, shard, values[0], values[1], cfg);
        return { grads: [g.gradEmb, g.gradDense], loss: g.loss, examples: g.examples };
      },
    };
  },
};
