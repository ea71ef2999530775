/**
 * Chooses, per call, between the plain-JS kernels (small n, or no WebAssembly SIMD) and the wasm
 * SIMD kernels (large n). The wasm module is built and instantiated lazily on first large call.
 */
import { JS_KERNELS } from './js-kernels.ts';
import { createWasmKernels, DEFAULT_BLOCK_FLOATS, type KernelName, type WasmKernels } from './wasm-kernels.ts';

/**
 * From this many values on, the wasm path is used. Measured with `bench/updaters.ts --sweep`: the
 * wasm path costs ~0.16 us per call (copies through linear memory, the JS->wasm call), so sum and
 * sgd break even between 64 and 128 values, adagrad/ftrl/adam between 16 and 64.
 */
export const WASM_MIN_N = 128;

/** 'auto' picks by size; 'js' / 'wasm' force one path (tests and benchmarks). */
export type ImplMode = 'auto' | 'js' | 'wasm';

let mode: ImplMode = 'auto';
let blockFloats = DEFAULT_BLOCK_FLOATS;
let wasm: WasmKernels | null | undefined; // undefined = not yet tried, null = unavailable

function getWasm(): WasmKernels | null {
  if (wasm === undefined) {
    try {
      wasm = createWasmKernels(blockFloats);
    } catch {
      wasm = null;
    }
  }
  return wasm;
}

/**
 * Internal, for tests and benchmarks: forces an implementation and/or rebuilds the wasm kernels
 * with another block size (floats per array per block; a positive multiple of 16).
 */
export function configureKernels(options: { mode?: ImplMode; blockFloats?: number }): void {
  if (options.mode !== undefined) mode = options.mode;
  if (options.blockFloats !== undefined && options.blockFloats !== blockFloats) {
    wasm = createWasmKernels(options.blockFloats);
    blockFloats = options.blockFloats;
  }
}

/** True when WebAssembly SIMD kernels could be instantiated in this runtime. */
export function wasmSimdAvailable(): boolean {
  return getWasm() !== null;
}

/** Runs kernel `name` on the chosen path; `scalars` are f32-rounded, in KERNEL_SCALARS order. */
export function runKernel(
  name: KernelName,
  values: Float32Array,
  state: readonly Float32Array[],
  grad: Float32Array,
  scalars: readonly number[],
): void {
  if (mode === 'wasm' || (mode === 'auto' && values.length >= WASM_MIN_N)) {
    const k = getWasm();
    if (k !== null) {
      k.run(name, values, state, grad, scalars);
      return;
    }
  }
  JS_KERNELS[name](values, state, grad, scalars);
}
