/**
 * Tests of the kernel layer: the wasm bytecode emitter (LEB128, module validity) and bit-exact
 * agreement of the JS and wasm SIMD kernels, including multi-block runs and unaligned subarrays.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createRng } from '../../shared/rng.ts';
import { configureKernels, runKernel, wasmSimdAvailable } from './dispatch.ts';
import { sleb, uleb } from './wasm-emit.ts';
import {
  buildKernelModule,
  createWasmKernels,
  DEFAULT_BLOCK_FLOATS,
  KERNEL_SCALARS,
  type KernelName,
} from './wasm-kernels.ts';

/** Scalars per kernel (f32-rounded, as the updaters pass them). */
const SCALARS: Record<KernelName, number[]> = {
  sum: [],
  sgd: [0.05],
  adagrad: [0.1, 1e-8],
  ftrl: [0.1, 1, 0.3, 0.01],
  adam: [0.9, 0.1, 0.999, 0.001, 0.00316, 1e-8],
};
const STATE_SLOTS: Record<KernelName, number> = { sum: 0, sgd: 0, adagrad: 1, ftrl: 2, adam: 2 };

/** A subarray of length n at float offset `at` (byteOffset 4*at, deliberately not 16-aligned). */
function filled(n: number, at: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = createRng(seed);
  const a = new Float32Array(n + at + 3).subarray(at, at + n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: index ${i}: ${a[i]} !== ${b[i]}`);
  }
}

describe('wasm emitter', () => {
  it('encodes LEB128', () => {
    assert.deepEqual(uleb(0), [0]);
    assert.deepEqual(uleb(127), [127]);
    assert.deepEqual(uleb(128), [0x80, 0x01]);
    assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
    assert.deepEqual(sleb(-1), [0x7f]);
    assert.deepEqual(sleb(63), [63]);
    assert.deepEqual(sleb(64), [0xc0, 0x00]);
    assert.deepEqual(sleb(-64), [0x40]);
    assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
  });

  it('emits a module that WebAssembly.validate accepts, for several block sizes', () => {
    for (const block of [16, 64, DEFAULT_BLOCK_FLOATS, 65536]) {
      assert.equal(WebAssembly.validate(buildKernelModule(block)), true, `block ${block}`);
    }
  });

  it('rejects block sizes that are not a positive multiple of 16', () => {
    for (const block of [0, -16, 10, 1.5]) {
      assert.throws(
        () => createWasmKernels(block),
        (err: { code?: string }) => err.code === 'TS_ERR_INVALID_ARGUMENT',
      );
    }
  });
});

describe('JS and wasm kernels agree bit for bit', () => {
  after(() => configureKernels({ mode: 'auto', blockFloats: DEFAULT_BLOCK_FLOATS }));

  it('has WebAssembly SIMD in this runtime (otherwise the wasm path is not being tested)', () => {
    assert.equal(wasmSimdAvailable(), true);
  });

  for (const block of [64, DEFAULT_BLOCK_FLOATS]) {
    for (const name of Object.keys(KERNEL_SCALARS) as KernelName[]) {
      it(`${name}, block ${block}`, () => {
        configureKernels({ blockFloats: block });
        const scalars = SCALARS[name].map(Math.fround);
        for (const n of [0, 1, 3, 17, 100, 1000, 4099, 70_001]) {
          const make = () => ({
            values: filled(n, 1, n + 1, -1, 1),
            grad: filled(n, 3, n + 2, -1, 1),
            // state 0 may be signed (z, m); state 1 must be >= 0 (n, v).
            state: Array.from({ length: STATE_SLOTS[name] }, (_, k) =>
              filled(n, 5 + k, n + 3 + k, k === 0 ? -1 : 0, 2),
            ),
          });
          const js = make();
          const wasm = make();
          for (let step = 0; step < 3; step++) {
            configureKernels({ mode: 'js' });
            runKernel(name, js.values, js.state, js.grad, scalars);
            configureKernels({ mode: 'wasm' });
            runKernel(name, wasm.values, wasm.state, wasm.grad, scalars);
          }
          assertBitEqual(wasm.values, js.values, `${name} n=${n} values`);
          for (let k = 0; k < js.state.length; k++)
            assertBitEqual(wasm.state[k], js.state[k], `${name} n=${n} state ${k}`);
          // The floats just past each subarray are untouched (block tails are not copied out).
          const past = new Float32Array(wasm.values.buffer, wasm.values.byteOffset + 4 * n, 2);
          assert.deepEqual([...past], [0, 0]);
        }
      });
    }
  }
});
