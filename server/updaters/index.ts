/**
 * The updater registry: server-side update functions registered by name (built-ins sum, sgd,
 * adagrad, ftrl, adam, plus user factories) and created per table with validated parameters.
 */
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { BUILTIN_UPDATERS } from './builtins.ts';
import type { Updater, UpdaterFactory } from './types.ts';

export type { Updater, UpdaterFactory } from './types.ts';

/** Updater names: a letter, then up to 63 letters, digits, '.', '_' or '-'. */
const NAME_RE = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

const factories = new Map<string, UpdaterFactory>();

/** Registers `factory` under `name`; TS_ERR_INVALID_ARGUMENT if the name is taken or invalid. */
export function registerUpdater(name: string, factory: UpdaterFactory): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `invalid updater name ${JSON.stringify(name)}`);
  }
  if (factories.has(name)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `updater "${name}" already registered`);
  if (typeof factory !== 'function') throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'factory must be a function');
  factories.set(name, factory);
}

/**
 * Creates the updater registered as `name` with `params`. TS_ERR_UNKNOWN_UPDATER for unknown
 * names; TS_ERR_INVALID_ARGUMENT for bad parameters or a factory that returns a malformed updater.
 */
export function createUpdater(name: string, params: Record<string, unknown> = {}): Updater {
  const factory = typeof name === 'string' ? factories.get(name) : undefined;
  if (factory === undefined) throw new TabshardError('TS_ERR_UNKNOWN_UPDATER', String(name));
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `${name}: params must be an object`);
  }
  let updater: Updater;
  try {
    updater = factory(params);
  } catch (err) {
    throw toTabshardError(err, 'TS_ERR_INVALID_ARGUMENT');
  }
  checkUpdater(name, updater);
  return updater;
}

/** Names of all registered updaters, sorted. */
export function updaterNames(): string[] {
  return [...factories.keys()].sort();
}

function checkUpdater(name: string, u: Updater): void {
  const ok =
    u !== null &&
    typeof u === 'object' &&
    typeof u.apply === 'function' &&
    Number.isInteger(u.stateSlots) &&
    u.stateSlots >= 0 &&
    Array.isArray(u.stateInit) &&
    u.stateInit.length === u.stateSlots &&
    u.stateInit.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (!ok) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `factory of "${name}" returned a malformed updater`);
}

for (const [name, factory] of Object.entries(BUILTIN_UPDATERS)) registerUpdater(name, factory);
