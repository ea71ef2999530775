/**
 * Plain-JS kernels of the built-in updaters: used for small arrays (where copying through wasm
 * memory costs more than it saves) and when WebAssembly SIMD is unavailable. Each intermediate is
 * rounded to f32 with Math.fround exactly where the wasm kernel rounds, so both paths agree bit for
 * bit (an f64 op on f32 operands, rounded once to f32, equals the f32 op for + - * / sqrt).
 */
import type { KernelName } from './wasm-kernels.ts';

const f32 = Math.fround;
const sqrt = Math.sqrt;
const abs = Math.abs;

type JsKernel = (w: Float32Array, state: readonly Float32Array[], g: Float32Array, s: readonly number[]) => void;

/** The JS kernels, taking the same scalars (already f32-rounded) as the wasm ones. */
export const JS_KERNELS: Record<KernelName, JsKernel> = {
  sum(w, _state, g) {
    for (let i = 0; i < w.length; i++) w[i] += g[i];
  },

  sgd(w, _state, g, s) {
    const lr = s[0];
    for (let i = 0; i < w.length; i++) w[i] -= f32(lr * g[i]);
  },

  adagrad(w, state, g, s) {
    const acc = state[0];
    const lr = s[0];
    const eps = s[1];
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const a = f32(acc[i] + f32(gi * gi));
      acc[i] = a;
      w[i] -= f32(f32(lr * gi) / f32(f32(sqrt(a)) + eps));
    }
  },

  ftrl(w, state, g, s) {
    const zs = state[0];
    const ns = state[1];
    const alpha = s[0];
    const beta = s[1];
    const l1 = s[2];
    const l2 = s[3];
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const nOld = ns[i];
      const nNew = f32(nOld + f32(gi * gi));
      const sq = f32(sqrt(nNew));
      const sigma = f32(f32(sq - f32(sqrt(nOld))) / alpha);
      const z = f32(zs[i] + f32(gi - f32(sigma * w[i])));
      zs[i] = z;
      ns[i] = nNew;
      if (abs(z) <= l1) {
        w[i] = 0;
      } else {
        const t = f32(z - (z < 0 ? -l1 : l1));
        w[i] = -t / f32(f32(f32(beta + sq) / alpha) + l2);
      }
    }
  },

  adam(w, state, g, s) {
    const ms = state[0];
    const vs = state[1];
    const b1 = s[0];
    const c1 = s[1];
    const b2 = s[2];
    const c2 = s[3];
    const stepSize = s[4];
    const eps = s[5];
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const m = f32(f32(b1 * ms[i]) + f32(c1 * gi));
      const v = f32(f32(b2 * vs[i]) + f32(c2 * f32(gi * gi)));
      ms[i] = m;
      vs[i] = v;
      w[i] -= f32(stepSize * f32(m / f32(f32(sqrt(v)) + eps)));
    }
  },
};
