/**
 * The built-in updaters (sum, sgd, adagrad, ftrl, adam): parameter parsing and validation, state
 * layout, and the per-call scalars handed to the kernels (see dispatch.ts for the JS/wasm choice).
 */
import { TabshardError } from '../../shared/errors.ts';
import { runKernel } from './dispatch.ts';
import type { Updater, UpdaterFactory } from './types.ts';
import type { KernelName } from './wasm-kernels.ts';

/** A parameter's default and the range it must lie in. */
interface ParamSpec {
  readonly def: number;
  /** 'nonneg': >= 0; 'positive': > 0; 'unit': in [0, 1). */
  readonly range: 'nonneg' | 'positive' | 'unit';
}

const RANGE_OK = {
  nonneg: (v: number) => v >= 0,
  positive: (v: number) => v > 0,
  unit: (v: number) => v >= 0 && v < 1,
} as const;
const RANGE_TEXT = { nonneg: '>= 0', positive: '> 0', unit: 'in [0, 1)' } as const;

/** Fills defaults and validates `params` against `specs`; unknown names and bad values throw. */
function parseParams<K extends string>(
  updater: string,
  params: Record<string, unknown>,
  specs: Record<K, ParamSpec>,
): Record<K, number> {
  const bad = (detail: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `${updater}: ${detail}`);
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw bad('params must be an object');
  for (const key of Object.keys(params)) {
    if (!Object.hasOwn(specs, key)) throw bad(`unknown parameter "${key}"`);
  }
  const out = {} as Record<K, number>;
  for (const key of Object.keys(specs) as K[]) {
    const { def, range } = specs[key];
    const raw = params[key] === undefined ? def : params[key];
    if (typeof raw !== 'number' || !Number.isFinite(raw)) throw bad(`${key} must be a finite number`);
    if (!RANGE_OK[range](raw)) throw bad(`${key} must be ${RANGE_TEXT[range]}`);
    if (!Number.isFinite(Math.fround(raw))) throw bad(`${key} is outside the float32 range`);
    out[key] = raw;
  }
  return out;
}

/** Throws unless all arrays have the same length and there are `slots` state arrays. */
function checkShapes(
  name: string,
  slots: number,
  values: Float32Array,
  state: readonly Float32Array[],
  grad: Float32Array,
) {
  const n = values.length;
  let ok = grad.length === n && state.length === slots;
  for (let k = 0; ok && k < slots; k++) ok = state[k].length === n;
  if (!ok) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `${name}: values, grad and state lengths differ`);
}

/** An updater whose kernel scalars do not depend on the step. */
function fixedUpdater(name: KernelName, stateInit: readonly number[], scalars: readonly number[]): Updater {
  const s = scalars.map(Math.fround);
  const slots = stateInit.length;
  return {
    name,
    stateSlots: slots,
    stateInit,
    apply(values, state, grad) {
      checkShapes(name, slots, values, state, grad);
      runKernel(name, values, state, grad, s);
    },
  };
}

const sum: UpdaterFactory = (params) => {
  parseParams('sum', params, {});
  return fixedUpdater('sum', [], []);
};

const sgd: UpdaterFactory = (params) => {
  const p = parseParams('sgd', params, { lr: { def: 0.01, range: 'nonneg' } });
  return fixedUpdater('sgd', [], [p.lr]);
};

const adagrad: UpdaterFactory = (params) => {
  const p = parseParams('adagrad', params, {
    lr: { def: 0.1, range: 'nonneg' },
    eps: { def: 1e-8, range: 'positive' },
    initialAccumulator: { def: 0.1, range: 'nonneg' },
  });
  return fixedUpdater('adagrad', [p.initialAccumulator], [p.lr, p.eps]);
};

const ftrl: UpdaterFactory = (params) => {
  const p = parseParams('ftrl', params, {
    alpha: { def: 0.1, range: 'positive' },
    beta: { def: 1, range: 'nonneg' },
    l1: { def: 1, range: 'nonneg' },
    l2: { def: 0, range: 'nonneg' },
  });
  return fixedUpdater('ftrl', [0, 0], [p.alpha, p.beta, p.l1, p.l2]);
};

const adam: UpdaterFactory = (params) => {
  const p = parseParams('adam', params, {
    lr: { def: 0.001, range: 'nonneg' },
    beta1: { def: 0.9, range: 'unit' },
    beta2: { def: 0.999, range: 'unit' },
    eps: { def: 1e-8, range: 'positive' },
    // Step decay: the step size is lr · decay / (decay + t) at the table's t-th push (halved after
    // `decay` pushes); 0 keeps it constant. What a job whose pushes stay noisy late needs (apps/cnn).
    decay: { def: 0, range: 'nonneg' },
  });
  const f32 = Math.fround;
  // [b1, c1, b2, c2, stepSize, eps]; stepSize (slot 4) is recomputed per step in f64, then rounded.
  const s = [f32(p.beta1), f32(1 - p.beta1), f32(p.beta2), f32(1 - p.beta2), 0, f32(p.eps)];
  return {
    name: 'adam',
    stateSlots: 2,
    stateInit: [0, 0],
    apply(values, state, grad, step) {
      checkShapes('adam', 2, values, state, grad);
      if (!Number.isInteger(step) || step < 1) {
        throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'adam: step must be an integer >= 1');
      }
      const lr = p.decay > 0 ? (p.lr * p.decay) / (p.decay + step) : p.lr;
      s[4] = f32((lr * Math.sqrt(1 - p.beta2 ** step)) / (1 - p.beta1 ** step));
      runKernel('adam', values, state, grad, s);
    },
  };
};

/** The built-in factories, registered by index.ts under these names. */
export const BUILTIN_UPDATERS: Readonly<Record<string, UpdaterFactory>> = { sum, sgd, adagrad, ftrl, adam };
