/**
 * WebAssembly SIMD (f32x4) kernels of the built-in updaters, and the block driver that streams
 * JS arrays through the module's linear memory in cache-sized blocks (copy in with `.set`, run the
 * kernel, copy the results out). Every f32 operation here is mirrored one-to-one by js-kernels.ts,
 * so both paths give bit-identical results on finite data.
 */
import { TabshardError } from '../../shared/errors.ts';
import { emitModule, FuncBody, Ins, Op, Simd, ValType } from './wasm-emit.ts';

/** The kernels, with the f32 scalars each one takes after its byte count (order matters). */
export const KERNEL_SCALARS = {
  sum: [],
  sgd: ['lr'],
  adagrad: ['lr', 'eps'],
  ftrl: ['alpha', 'beta', 'l1', 'l2'],
  adam: ['b1', 'c1', 'b2', 'c2', 'stepSize', 'eps'],
} as const satisfies Record<string, readonly string[]>;
export type KernelName = keyof typeof KERNEL_SCALARS;

/** Default block: 16K floats per array (64 KiB), so the four arrays of adam/ftrl fit in L2. */
export const DEFAULT_BLOCK_FLOATS = 16384;
/** Vectors processed per loop iteration (the loop runs over whole groups; the tail lanes are scratch). */
const UNROLL = 4;
const STRIDE_BYTES = 16 * UNROLL;
const SIGN_BIT = 0x80000000;
const PAGE_BYTES = 65536;

const { get, set, tee, load, store, simd } = Ins;
const add = simd(Simd.f32x4Add);
const sub = simd(Simd.f32x4Sub);
const mul = simd(Simd.f32x4Mul);
const div = simd(Simd.f32x4Div);
const sqrt = simd(Simd.f32x4Sqrt);

/** Emits one kernel: `(nbytes: i32, ...scalars: f32)`, looping i over [0, nbytes) in STRIDE_BYTES steps. */
function kernel(scalars: number, body: (f: FuncBody, i: number, s: number[], lane: number) => void): FuncBody {
  const f = new FuncBody([ValType.i32, ...new Array<ValType>(scalars).fill(ValType.f32)]);
  const i = f.local(ValType.i32);
  const splats: number[] = [];
  for (let k = 0; k < scalars; k++) {
    splats.push(f.local(ValType.v128));
    f.emit(get(1 + k), simd(Simd.f32x4Splat), set(splats[k]));
  }
  f.emit(Ins.block(), get(0), Ins.op(Op.i32Eqz), Ins.brIf(0), Ins.loop());
  for (let u = 0; u < UNROLL; u++) body(f, i, splats, 16 * u);
  f.emit(get(i), Ins.i32(STRIDE_BYTES), Ins.op(Op.i32Add), tee(i), get(0), Ins.op(Op.i32LtU), Ins.brIf(0));
  return f.emit(Ins.end(), Ins.end());
}

/** Builds the module bytes for a given block size (floats per array; multiple of 4 * UNROLL). */
export function buildKernelModule(blockFloats: number): Uint8Array<ArrayBuffer> {
  const B = blockFloats * 4;
  const [W, G, S0, S1] = [0, B, 2 * B, 3 * B]; // byte offsets of values, grad, state 0, state 1

  // Stores take (address, value): each statement starts with get(i) for the store address.
  const sum = kernel(0, (f, i, _s, o) => {
    f.emit(get(i), get(i), load(W + o), get(i), load(G + o), add, store(W + o));
  });
  const sgd = kernel(1, (f, i, [lr], o) => {
    f.emit(get(i), get(i), load(W + o), get(lr), get(i), load(G + o), mul, sub, store(W + o));
  });
  const adagrad = kernel(2, (f, i, [lr, eps], o) => {
    const [g, acc] = [f.local(ValType.v128), f.local(ValType.v128)];
    f.emit(get(i), load(G + o), set(g));
    // acc += g*g
    f.emit(get(i), get(i), load(S0 + o), get(g), get(g), mul, add, tee(acc), store(S0 + o));
    // w -= (lr*g) / (sqrt(acc) + eps)
    f.emit(get(i), get(i), load(W + o), get(lr), get(g), mul, get(acc), sqrt, get(eps), add, div, sub, store(W + o));
  });
  const ftrl = kernel(4, (f, i, [alpha, beta, l1, l2], o) => {
    const [g, nOld, nNew, sq, z] = [0, 0, 0, 0, 0].map(() => f.local(ValType.v128));
    f.emit(get(i), load(G + o), set(g), get(i), load(S1 + o), set(nOld));
    f.emit(get(nOld), get(g), get(g), mul, add, set(nNew), get(nNew), sqrt, set(sq)); // nNew = n + g*g
    // z += g - sigma*w, with sigma = (sqrt(nNew) - sqrt(n)) / alpha; n = nNew
    f.emit(get(i), get(i), load(S0 + o), get(g), get(sq), get(nOld), sqrt, sub, get(alpha), div);
    f.emit(get(i), load(W + o), mul, sub, add, tee(z), store(S0 + o), get(i), get(nNew), store(S1 + o));
    // w = |z| <= l1 ? 0 : -(z - sign(z)*l1) / ((beta + sqrt(nNew))/alpha + l2); sign via bitselect of the sign bit
    f.emit(get(i), get(z), get(z), get(l1), Ins.u32x4(SIGN_BIT), simd(Simd.v128Bitselect), sub, simd(Simd.f32x4Neg));
    f.emit(get(beta), get(sq), add, get(alpha), div, get(l2), add, div);
    f.emit(get(z), simd(Simd.f32x4Abs), get(l1), simd(Simd.f32x4Le), simd(Simd.v128AndNot), store(W + o));
  });
  const adam = kernel(6, (f, i, [b1, c1, b2, c2, stepSize, eps], o) => {
    const [g, m, v] = [0, 0, 0].map(() => f.local(ValType.v128));
    f.emit(get(i), load(G + o), set(g));
    // m = b1*m + c1*g; v = b2*v + c2*(g*g)
    f.emit(get(i), get(b1), get(i), load(S0 + o), mul, get(c1), get(g), mul, add, tee(m), store(S0 + o));
    f.emit(get(i), get(b2), get(i), load(S1 + o), mul, get(c2), get(g), get(g), mul, mul, add, tee(v), store(S1 + o));
    // w -= stepSize * (m / (sqrt(v) + eps))
    f.emit(get(i), get(i), load(W + o), get(stepSize), get(m), get(v), sqrt, get(eps), add, div, mul, sub);
    f.emit(store(W + o));
  });
  const pages = Math.ceil((4 * B) / PAGE_BYTES);
  const funcs = { sum, sgd, adagrad, ftrl, adam };
  return emitModule(
    pages,
    Object.entries(funcs).map(([name, body]) => ({ name, body })),
  );
}

type KernelFn = (nbytes: number, ...scalars: number[]) => void;

/** An instantiated kernel module plus its block driver. */
export interface WasmKernels {
  readonly blockFloats: number;
  /**
   * Runs kernel `name` over whole arrays (values, grad, state all the same length), block by block.
   * `scalars` must have exactly the entries listed in KERNEL_SCALARS[name].
   */
  run(
    name: KernelName,
    values: Float32Array,
    state: readonly Float32Array[],
    grad: Float32Array,
    scalars: readonly number[],
  ): void;
}

/** Instantiates the kernels, or returns null when WebAssembly SIMD is unavailable. */
export function createWasmKernels(blockFloats = DEFAULT_BLOCK_FLOATS): WasmKernels | null {
  if (!Number.isInteger(blockFloats) || blockFloats <= 0 || blockFloats % (4 * UNROLL) !== 0) {
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `blockFloats must be a positive multiple of ${4 * UNROLL}`);
  }
  if (typeof WebAssembly !== 'object') return null;
  const bytes = buildKernelModule(blockFloats);
  if (!WebAssembly.validate(bytes)) return null;
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
  const buffer = (exports.memory as WebAssembly.Memory).buffer;
  const fns = exports as unknown as Record<KernelName, KernelFn>;
  // Fixed-size memory (min = max), so these views never detach.
  const region = (k: number): Float32Array => new Float32Array(buffer, k * blockFloats * 4, blockFloats);
  const regions = [region(0), region(1), region(2), region(3)];
  const [wMem, gMem] = regions;

  /** Calls with exactly the kernel's arity (extra JS->wasm arguments would take a slower adapter path). */
  const call = (fn: KernelFn, nbytes: number, s: readonly number[]): void => {
    if (s.length === 0) fn(nbytes);
    else if (s.length === 1) fn(nbytes, s[0]);
    else if (s.length === 2) fn(nbytes, s[0], s[1]);
    else if (s.length === 4) fn(nbytes, s[0], s[1], s[2], s[3]);
    else fn(nbytes, s[0], s[1], s[2], s[3], s[4], s[5]);
  };

  return {
    blockFloats,
    run(name, values, state, grad, scalars) {
      const fn = fns[name];
      const n = values.length;
      for (let off = 0; off < n; off += blockFloats) {
        const len = Math.min(blockFloats, n - off);
        const end = off + len;
        wMem.set(values.subarray(off, end));
        gMem.set(grad.subarray(off, end));
        for (let k = 0; k < state.length; k++) regions[2 + k].set(state[k].subarray(off, end));
        call(fn, Math.ceil(len / (4 * UNROLL)) * STRIDE_BYTES, scalars);
        const whole = len === blockFloats;
        values.set(whole ? wMem : wMem.subarray(0, len), off);
        for (let k = 0; k < state.length; k++)
          state[k].set(whole ? regions[2 + k] : regions[2 + k].subarray(0, len), off);
      }
    },
  };
}
