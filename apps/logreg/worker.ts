/**
 * Sparse logistic regression's worker side: one table (`tables[0]`, the weights, one float per
 * key), pulled at the shard's keys; the gradient of the shard's summed log-loss (gradient.ts).
 */
import type { WorkerApp } from '../contract.ts';
import { logregGradient } from './gradient.ts';

export const logregWorker: WorkerApp = {
  name: 'logreg',
  bind(info) {
    const [weights] = info.tables;
    return {
      pulls: (shard) => [{ table: weights, keys: shard.keys }],
      async gradient(tf, shard, values) {
        const g = await logregGradient(tf, shard, values[0]);
        return { grads: [g.grad], loss: g.loss, examples: g.examples };
      },
    };
  },
};
