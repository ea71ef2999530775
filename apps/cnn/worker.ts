/**
 * The CNN's worker side (model.ts); `model` = {filters1, filters2, hidden}. One dense table per
 * layer (conv1, conv2, hidden when hidden > 0, out): a task pulls each whole, as one key range, and pushes the gradient
 * of its shard's summed cross-entropy (gradient.ts) to each whole.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { WorkerApp } from '../contract.ts';
import { cnnGradient } from './gradient.ts';
import { type CnnConfig, checkCnnConfig, cnnLayers } from './model.ts';

export const cnnWorker: WorkerApp = {
  name: 'cnn',
  bind(info) {
    const cfg: CnnConfig = checkCnnConfig({
      filters1: info.model?.filters1 ?? Number.NaN,
      filters2: info.model?.filters2 ?? Number.NaN,
      hidden: info.model?.hidden ?? Number.NaN,
    });
    const layers = cnnLayers(cfg);
    if (info.tables.length !== layers.length)
      throw new TabshardError(
        'TS_ERR_INVALID_ARGUMENT',
        `app: cnn needs ${layers.length} tables (${layers.map((l) => l.name).join(', ')}), got ${info.tables.length}`,
      );
    const pulls = layers.map((l, i) => ({ table: info.tables[i], keys: { begin: 0, end: l.size } }));
    return {
      pulls: () => pulls,
      gradient: (tf, shard, values) => cnnGradient(tf, shard, values, cfg),
    };
  },
};
