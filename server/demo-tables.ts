/**
 * The tables of job 0 that `tabshard start` defines besides its jobs' own: a sparse FTRL and a
 * dense SGD table, and two sum tables (what a worker pushes adds up exactly, so tests and
 * benchmarks can read it back).
 */
import type { TableSpec } from '../shared/table.ts';

export const DEMO_TABLES: TableSpec[] = [
  {
    job: 0,
    id: 1,
    name: 'weights',
    kind: 'sparse',
    keySpace: 2 ** 24,
    valueLength: 1,
    updater: 'ftrl',
    params: {},
    init: { kind: 'zeros' },
  },
  {
    job: 0,
    id: 2,
    name: 'dense',
    kind: 'dense',
    keySpace: 1 << 20,
    valueLength: 1,
    updater: 'sgd',
    params: { lr: 0.1 },
    init: { kind: 'zeros' },
  },
  // Sum tables: what a worker pushes adds up exactly, so tests and benchmarks can read it back.
  {
    job: 0,
    id: 3,
    name: 'sum-sparse',
    kind: 'sparse',
    keySpace: 2 ** 24,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
  {
    job: 0,
    id: 4,
    name: 'sum-dense',
    kind: 'dense',
    keySpace: 1 << 20,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
];
