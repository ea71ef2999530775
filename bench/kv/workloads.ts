/**
 * bench/kv workloads (the same as the anchor's): dense-4MB (1M float32 in one range), sparse-1M
 * (1M keys x 1 float32, random, sorted, unique in [0, 2^40)), dense-4KB (1024 float32).
 */

import type { TableGrant } from '../../server/auth/capability.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import type { TableSpec } from '../../shared/table.ts';

const table = (id: number, name: string, kind: 'dense' | 'sparse', keySpace: number): TableSpec => ({
  job: 0,
  id,
  name,
  kind,
  keySpace,
  valueLength: 1,
  updater: 'sum',
  params: {},
  init: { kind: 'zeros' },
});

export const BENCH_TABLES: TableSpec[] = [
  table(1, 'dense-4MB', 'dense', 1 << 20),
  table(2, 'sparse-1M', 'sparse', 2 ** 40),
  table(3, 'dense-4KB', 'dense', 1024),
];

export interface Workload {
  name: string;
  keys: Float64Array | { begin: number; end: number };
  n: number;
  /** Repetitions per op (full run, quick run). */
  reps: [number, number];
}

export function workloads(): Workload[] {
  return [
    { name: 'dense-4MB', keys: { begin: 0, end: 1 << 20 }, n: 1 << 20, reps: [60, 12] },
    { name: 'sparse-1M', keys: randomSortedKeys(createRng(1), 1 << 20, 2 ** 40), n: 1 << 20, reps: [30, 8] },
    { name: 'dense-4KB', keys: { begin: 0, end: 1024 }, n: 1024, reps: [2000, 300] },
  ];
}

/**
 * The `-caps` variant's task grants (PROTOCOL.md §6.2): a dense table's whole key space as a
 * range, the sparse table's workload keys as key set `setId` (installed with KEYSET).
 */
export function capsGrants(setId: number): TableGrant[] {
  return BENCH_TABLES.map((t) =>
    t.kind === 'dense' ? { id: t.id, range: [0, t.keySpace] as [number, number] } : { id: t.id, keys: setId },
  );
}
