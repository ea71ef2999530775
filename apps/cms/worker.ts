/**
 * The Count-Min sketch's worker side: a task streams its shard's items and adds each count to one
 * counter per row of the sketch (`tables[0]`, depth·width keys, a sum table). It reads nothing:
 * the push is the whole task. `model` = {depth, width, seed}.
 */
import type { WorkerApp } from '../contract.ts';
import { checkSketch, shardCells } from './sketch.ts';

export const cmsWorker: WorkerApp = {
  name: 'cms',
  bind(info) {
    const m = info.model ?? {};
    const cfg = checkSketch({ depth: m.depth ?? Number.NaN, width: m.width ?? Number.NaN, seed: m.seed ?? Number.NaN });
    const [sketch] = info.tables;
    return {
      pulls: (shard) => [{ table: sketch, keys: shardCells(cfg, shard).cells, pushOnly: true }],
      async gradient(_tf, shard) {
        const { counts, inserts } = shardCells(cfg, shard);
        // A copy: the push's error feedback and transfers may take the array over.
        return { grads: [counts.slice()], loss: 0, examples: inserts };
      },
    };
  },
};
