/**
 * Table definitions (docs/architecture.md §2): what a table is, shared by client and server and carried
 * in TABLE control messages. `parseTableSpec` validates untrusted JSON into a TableSpec.
 */

import { type HoldSpec, parseHold } from './aggregate.ts';
import { TabshardError } from './errors.ts';
import { KEY_LIMIT } from './protocol/frame.ts';

export type TableKind = 'dense' | 'sparse';

export type Initializer =
  | { kind: 'zeros' }
  | { kind: 'constant'; value: number }
  | { kind: 'uniform'; scale: number; seed: number }
  | { kind: 'normal'; std: number; seed: number };

/**
 * What one push frame may carry (PROTOCOL.md §6, TABLE `bounds`); a node refuses a frame over a
 * bound with TS_ERR_PUSH_BOUND. Each bound is a finite number > 0; an absent one does not bound.
 */
export interface PushBounds {
  /** Largest |v| of any pushed float. */
  value?: number;
  /** Largest L2 norm of one push frame's values (computed in float64). */
  norm?: number;
}

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
  /** Bounds on every push (absent: none, only finiteness is checked). */
  bounds?: PushBounds;
  /** Hold the pushes of tasks by iteration and apply one aggregate per key at CLOCK (absent: apply each push). */
  hold?: HoldSpec;
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

const BOUND_KEYS = ['value', 'norm'] as const;

/** Bounds from untrusted JSON; undefined when absent or empty (`{}` bounds nothing). */
function parseBounds(v: unknown): PushBounds | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('bounds must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!(BOUND_KEYS as readonly string[]).includes(k)) throw bad(`bounds.${k} is not a bound (value, norm)`);
  const out: PushBounds = {};
  for (const k of BOUND_KEYS) {
    const x = o[k];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw bad(`bounds.${k} must be a finite number > 0`);
    out[k] = x;
  }
  return out.value === undefined && out.norm === undefined ? undefined : out;
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
  const spec: TableSpec = {
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
  const bounds = parseBounds(o.bounds);
  if (bounds) spec.bounds = bounds;
  const hold = parseHold(o.hold);
  if (hold) spec.hold = hold;
  return spec;
}

/** The spec's fields in one fixed order (params sorted; bounds only when they bound something). */
function canonical(t: TableSpec): string {
  const params: Record<string, number> = {};
  for (const k of Object.keys(t.params).sort()) params[k] = t.params[k];
  const i = t.init as Record<string, unknown>;
  const init = { kind: i.kind, value: i.value, scale: i.scale, std: i.std, seed: i.seed };
  const b = t.bounds;
  const bounds = b && (b.value !== undefined || b.norm !== undefined) ? { value: b.value, norm: b.norm } : undefined;
  const { job, id, name, kind, keySpace, valueLength, updater } = t;
  const h = t.hold;
  const hold = h && { rule: h.rule, tasksPerIteration: h.tasksPerIteration, trim: h.trim, clip: h.clip };
  // JSON.stringify leaves out undefined members, so an absent field and an absent bound compare equal.
  return JSON.stringify({ job, id, name, kind, keySpace, valueLength, updater, params, init, bounds, hold });
}

/** True when two specs define the same table (so re-creating it is a no-op); bounds included. */
export function sameTable(a: TableSpec, b: TableSpec): boolean {
  return canonical(a) === canonical(b);
}
