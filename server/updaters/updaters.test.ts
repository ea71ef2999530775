/**
 * Tests of the updater API: each built-in against a plain f64 reference implementation on seeded
 * random data (both kernel paths), FTRL's exact zeros, user-registered updaters, registry errors.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createRng } from '../../shared/rng.ts';
import { configureKernels, type ImplMode } from './dispatch.ts';
import { createUpdater, registerUpdater, type Updater, updaterNames } from './index.ts';

type Arrays = { w: Float64Array; s: Float64Array[]; g: Float64Array };
type P = Record<string, number>;
/** Straightforward per-element references, in f64; `p` holds every parameter. */
const REFERENCE: Record<string, (a: Arrays, i: number, step: number, p: P) => void> = {
  sum: ({ w, g }, i) => {
    w[i] += g[i];
  },
  sgd: ({ w, g }, i, _t, { lr }) => {
    w[i] -= lr * g[i];
  },
  adagrad: ({ w, s, g }, i, _t, { lr, eps }) => {
    s[0][i] += g[i] * g[i];
    w[i] -= (lr * g[i]) / (Math.sqrt(s[0][i]) + eps);
  },
  ftrl: ({ w, s: [z, n], g }, i, _t, { alpha, beta, l1, l2 }) => {
    const sigma = (Math.sqrt(n[i] + g[i] ** 2) - Math.sqrt(n[i])) / alpha;
    z[i] += g[i] - sigma * w[i];
    n[i] += g[i] ** 2;
    w[i] = Math.abs(z[i]) <= l1 ? 0 : -(z[i] - Math.sign(z[i]) * l1) / ((beta + Math.sqrt(n[i])) / alpha + l2);
  },
  adam: ({ w, s: [m, v], g }, i, t, { lr: lr0, beta1: b1, beta2: b2, eps, decay }) => {
    const lr = decay > 0 ? (lr0 * decay) / (decay + t) : lr0;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2;
    w[i] -= ((lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t)) * (m[i] / (Math.sqrt(v[i]) + eps));
  },
};

/** [updater, params passed (undefined = defaults), all parameter values the reference uses]. */
const CASES: [string, P | undefined, P][] = [
  ['sum', undefined, {}],
  ['sgd', undefined, { lr: 0.01 }],
  ['sgd', { lr: 0.3 }, { lr: 0.3 }],
  ['adagrad', undefined, { lr: 0.1, eps: 1e-8, initialAccumulator: 0.1 }],
  ['adagrad', { lr: 0.5, eps: 1e-3, initialAccumulator: 1 }, { lr: 0.5, eps: 1e-3, initialAccumulator: 1 }],
  ['ftrl', undefined, { alpha: 0.1, beta: 1, l1: 1, l2: 0 }],
  ['ftrl', { alpha: 0.5, beta: 0.5, l1: 0.2, l2: 0.3 }, { alpha: 0.5, beta: 0.5, l1: 0.2, l2: 0.3 }],
  ['adam', undefined, { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 0 }],
  [
    'adam',
    { lr: 0.05, beta1: 0.5, beta2: 0.9, eps: 1e-4, decay: 3 },
    { lr: 0.05, beta1: 0.5, beta2: 0.9, eps: 1e-4, decay: 3 },
  ],
];

/** A seeded subarray of length n at float offset `at` (an odd offset: 4-byte but not 16-byte aligned). */
function randomF32(n: number, at: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = createRng(seed);
  const a = new Float32Array(n + at + 1).subarray(at, at + n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

const codeOf = (code: string) => (err: { code?: string }) => err.code === code;

describe('built-in updaters match a reference implementation', () => {
  after(() => configureKernels({ mode: 'auto' }));
  for (const mode of ['auto', 'js', 'wasm'] as ImplMode[]) {
    for (const [name, params, all] of CASES) {
      it(`${name} ${JSON.stringify(params ?? 'defaults')} (${mode})`, () => {
        configureKernels({ mode });
        const u = createUpdater(name, params);
        for (const n of [0, 1, 3, 17, 1000, 300_000]) {
          const w = randomF32(n, 1, n + 11, -1, 1);
          // Mix of small and unit gradients; the state starts at stateInit plus noise (z may be signed).
          const state = u.stateInit.map((init, k) => {
            const s = randomF32(n, 3 + 2 * k, n + 12 + k, 0, 0.5);
            for (let i = 0; i < n; i++) s[i] = name === 'ftrl' && k === 0 ? 4 * s[i] - 1 : s[i] + init;
            return s;
          });
          const ref: Arrays = {
            w: Float64Array.from(w),
            s: state.map((s) => Float64Array.from(s)),
            g: new Float64Array(n),
          };
          for (let step = 1; step <= 3; step++) {
            const grad = randomF32(n, 5, n * 7 + step, -1, 1);
            if (step === 2) for (let i = 0; i < n; i++) grad[i] *= 1e-3;
            u.apply(w, state, grad, step);
            ref.g = Float64Array.from(grad);
            for (let i = 0; i < n; i++) REFERENCE[name](ref, i, step, all);
            // sum: f32 + f32 rounded once is exact, and the reference rounds the same way on store.
            if (name === 'sum') ref.w = Float64Array.from(Float32Array.from(ref.w));
          }
          if (name === 'sum') {
            assert.deepEqual([...w], [...ref.w], `sum n=${n} must be bit-exact`);
          } else {
            // The kernels round every intermediate to f32 (ulp 2^-23 ~ 1.2e-7); the reference keeps
            // f64. A few ops over 3 steps stay well within 2e-6 relative (absolute below magnitude 1).
            assertClose(w, ref.w, `${name} n=${n} values`);
            for (let k = 0; k < state.length; k++) assertClose(state[k], ref.s[k], `${name} n=${n} state ${k}`);
          }
        }
      });
    }
  }
});

function assertClose(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 2e-6 * Math.max(1, Math.abs(want[i])))) {
      assert.fail(`${what}: index ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

describe('ftrl', () => {
  after(() => configureKernels({ mode: 'auto' }));
  for (const mode of ['js', 'wasm'] as ImplMode[]) {
    it(`produces exact zeros for small gradients when l1 > 0 (${mode})`, () => {
      configureKernels({ mode });
      const n = 1000;
      const run = (l1: number) => {
        const u = createUpdater('ftrl', { l1 });
        const w = randomF32(n, 1, 1, -1, 1);
        const state = [new Float32Array(n), new Float32Array(n)];
        u.apply(w, state, randomF32(n, 1, 2, -0.01, 0.01), 1);
        return w;
      };
      // |z| <= |g| (1 + |w| / alpha) <= 0.11 < l1 everywhere, so every weight is exactly +0.
      assert.ok(run(1).every((x) => Object.is(x, 0)));
      assert.ok(run(0).every((x) => x !== 0));
    });
  }
});

describe('registry', () => {
  it('lists the built-ins and creates user-registered updaters', () => {
    registerUpdater('clip-sum', (params) => {
      const clip = (params.clip ?? 1) as number;
      const u: Updater = {
        name: 'clip-sum',
        stateSlots: 0,
        stateInit: [],
        apply(values, _state, grad) {
          for (let i = 0; i < values.length; i++) values[i] += Math.min(clip, Math.max(-clip, grad[i]));
        },
      };
      return u;
    });
    assert.deepEqual(updaterNames(), ['adagrad', 'adam', 'clip-sum', 'ftrl', 'sgd', 'sum']);
    const w = new Float32Array([1, 1, 1]);
    createUpdater('clip-sum', { clip: 0.5 }).apply(w, [], new Float32Array([2, -0.25, -3]), 1);
    assert.deepEqual([...w], [1.5, 0.75, 0.5]);
  });

  it('rejects unknown updaters with TS_ERR_UNKNOWN_UPDATER', () => {
    assert.throws(() => createUpdater('nope'), codeOf('TS_ERR_UNKNOWN_UPDATER'));
    assert.throws(() => createUpdater('toString'), codeOf('TS_ERR_UNKNOWN_UPDATER'));
  });

  it('rejects taken or invalid names and non-function factories', () => {
    const f = () => createUpdater('sum');
    for (const name of ['sum', '', '1abc', 'has space', 'x'.repeat(65)]) {
      assert.throws(() => registerUpdater(name, f), codeOf('TS_ERR_INVALID_ARGUMENT'), name);
    }
    assert.throws(() => registerUpdater('not-fn', 42 as never), codeOf('TS_ERR_INVALID_ARGUMENT'));
  });

  it('rejects bad parameters with TS_ERR_INVALID_ARGUMENT', () => {
    const bad: [string, Record<string, unknown>][] = [
      ['sgd', { lr: -0.1 }],
      ['sgd', { lr: Number.NaN }],
      ['sgd', { lr: Number.POSITIVE_INFINITY }],
      ['sgd', { lr: '0.1' }],
      ['sgd', { learningRate: 0.1 }],
      ['sgd', { lr: 1e39 }],
      ['sum', { lr: 0.1 }],
      ['adagrad', { eps: 0 }],
      ['adagrad', { initialAccumulator: -1 }],
      ['ftrl', { alpha: 0 }],
      ['ftrl', { l1: -1 }],
      ['adam', { beta1: 1 }],
      ['adam', { beta2: -0.5 }],
    ];
    for (const [name, params] of bad) {
      assert.throws(() => createUpdater(name, params), codeOf('TS_ERR_INVALID_ARGUMENT'), JSON.stringify(params));
    }
    assert.throws(() => createUpdater('sgd', null as never), codeOf('TS_ERR_INVALID_ARGUMENT'));
    assert.equal(createUpdater('adagrad', { lr: 0, initialAccumulator: 0 }).stateInit[0], 0);
  });

  it('rejects malformed updaters, mismatched shapes and bad steps with TS_ERR_INVALID_ARGUMENT', () => {
    registerUpdater('malformed', () => ({ name: 'malformed', stateSlots: 1, stateInit: [] }) as never);
    assert.throws(() => createUpdater('malformed'), codeOf('TS_ERR_INVALID_ARGUMENT'));
    const w = new Float32Array(4);
    assert.throws(() => createUpdater('sum').apply(w, [], new Float32Array(3), 1), codeOf('TS_ERR_INVALID_ARGUMENT'));
    assert.throws(
      () => createUpdater('adagrad').apply(w, [], new Float32Array(4), 1),
      codeOf('TS_ERR_INVALID_ARGUMENT'),
    );
    const adamState = [new Float32Array(4), new Float32Array(4)];
    assert.throws(
      () => createUpdater('adam').apply(w, adamState, new Float32Array(4), 0),
      codeOf('TS_ERR_INVALID_ARGUMENT'),
    );
  });
});
