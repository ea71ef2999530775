/**
 * Table definitions (docs/architecture.md §2): what a table is, shared by client and server and carried
 * in TABLE control messages. `parseTableSpec` validates untrusted JSON into a TableSpec.
 */
import { TabshardError } from './errors.ts';
import { KEY_LIMIT } from './protocol/frame.ts';

export type TableKind = 'dense' | 'sparse';

export type Initializer =
  | { kind: 'zeros' }
  | { kind: 'constant'; value: number }
  | { kind: 'uniform'; scale: number; seed: number }
  | { kind: 'normal'; std: number; seed: number };

export interface TableSpec {
  /** The job (worker group) the table belongs to. */
  job: number;
  /** Table id on the wire, unique within the job. */
  id: number;
  name: string;
  kind: TableKind;
  /** Key space [0, keySpace). */
  keySpace: number;
  /** Floats per key (1 for linear weights, d for embedding rows). */
  valueLength: number;
  updater: string;
  params: Record<string, number>;
  init: Initializer;
}

const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', why);

function u32(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`${k} must be a u32`);
  return v;
}

function finite(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${k} must be a finite number`);
  return v;
}

function parseInit(v: unknown): Initializer {
  if (v === undefined) return { kind: 'zeros' };
  if (typeof v !== 'object' || v === null) throw bad('init must be an object');
  const o = v as Record<string, unknown>;
  switch (o.kind) {
    case 'zeros':
      return { kind: 'zeros' };
    case 'constant':
      return { kind: 'constant', value: finite(o, 'value') };
    case 'uniform':
      return { kind: 'uniform', scale: finite(o, 'scale'), seed: u32(o, 'seed') };
    case 'normal':
      return { kind: 'normal', std: finite(o, 'std'), seed: u32(o, 'seed') };
    default:
      throw bad('init.kind must be zeros, constant, uniform or normal');
  }
}

/** Validates a table definition from untrusted JSON. */
export function parseTableSpec(v: unknown): TableSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('table spec must be an object');
  const o = v as Record<string, unknown>;
  const name = o.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200)
    throw bad('name must be a string of 1-200 chars');
  if (o.kind !== 'dense' && o.kind !== 'sparse') throw bad('kind must be dense or sparse');
  const keySpace = o.keySpace;
  if (typeof keySpace !== 'number' || !Number.isInteger(keySpace) || keySpace < 1 || keySpace > KEY_LIMIT)
    throw bad('keySpace must be an integer in [1, 2^52]');
  const valueLength = u32(o, 'valueLength');
  if (valueLength < 1 || valueLength > 65536) throw bad('valueLength must be in [1, 65536]');
  if (typeof o.updater !== 'string') throw bad('updater must be a name');
  const params: Record<string, number> = {};
  if (o.params !== undefined) {
    if (typeof o.params !== 'object' || o.params === null || Array.isArray(o.params))
      throw bad('params must be an object');
    for (const k of Object.keys(o.params).sort()) params[k] = finite(o.params as Record<string, unknown>, k);
  }
  return {
    job: u32(o, 'job'),
    id: u32(o, 'id'),
    name,
    kind: o.kind,
    keySpace,
    valueLength,
    updater: o.updater,
    params,
    init: parseInit(o.init),
  };
}

/** True when two specs define the same table (so re-creating it is a no-op). */
export function sameTable(a: TableSpec, b: TableSpec): boolean {
  // parseTableSpec builds every field in a fixed order (params sorted), so JSON equality is exact.
  return JSON.stringify(a) === JSON.stringify(b);
}
