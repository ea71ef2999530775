/**
 * A tiny WebAssembly bytecode emitter: LEB128, the handful of sections a kernel module needs
 * (type, function, memory, export, code) and a function-body builder with named opcodes,
 * including the 0xFD-prefixed SIMD (v128 / f32x4) instructions. No toolchain needed.
 */

/** Value types (binary encoding). */
export const ValType = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
export type ValType = (typeof ValType)[keyof typeof ValType];

/** Core single-byte opcodes used by the kernels. */
export const Op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32Add: 0x6a,
  simdPrefix: 0xfd,
} as const;

/** SIMD opcodes: encoded as `0xFD` followed by the opcode as unsigned LEB128. */
export const Simd = {
  v128Load: 0x00,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f32x4Splat: 0x13,
  f32x4Le: 0x45,
  v128And: 0x4e,
  v128AndNot: 0x4f,
  v128Bitselect: 0x52,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
} as const;
export type SimdOp = (typeof Simd)[keyof typeof Simd];

const SECTION = { type: 1, function: 3, memory: 5, export: 7, code: 10 } as const;
const FUNC_TYPE = 0x60;
const BLOCK_VOID = 0x40;
const EXPORT_FUNC = 0x00;
const EXPORT_MEMORY = 0x02;
const LIMITS_MIN_MAX = 0x01;

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 (32-bit). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function utf8(name: string): number[] {
  const bytes = [...new TextEncoder().encode(name)];
  return [...uleb(bytes.length), ...bytes];
}

/** A length-prefixed vector of already encoded items. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** Instruction encoders: each returns the bytes of one instruction (opcode plus immediates). */
export const Ins = {
  op: (code: number): number[] => [code],
  simd: (code: SimdOp): number[] => [Op.simdPrefix, ...uleb(code)],
  get: (local: number): number[] => [Op.localGet, ...uleb(local)],
  set: (local: number): number[] => [Op.localSet, ...uleb(local)],
  tee: (local: number): number[] => [Op.localTee, ...uleb(local)],
  i32: (value: number): number[] => [Op.i32Const, ...sleb(value)],
  block: (): number[] => [Op.block, BLOCK_VOID],
  loop: (): number[] => [Op.loop, BLOCK_VOID],
  brIf: (depth: number): number[] => [Op.brIf, ...uleb(depth)],
  end: (): number[] => [Op.end],
  /** v128.load at address (top of stack) + static `offset`, 16-byte alignment hint (2^4). */
  load: (offset: number): number[] => [...Ins.simd(Simd.v128Load), ...uleb(4), ...uleb(offset)],
  /** v128.store of (address, value) at address + static `offset`. */
  store: (offset: number): number[] => [...Ins.simd(Simd.v128Store), ...uleb(4), ...uleb(offset)],
  /** v128.const with the same 32-bit pattern in every lane (little-endian). */
  u32x4: (bits: number): number[] => {
    const lane = [bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, bits >>> 24];
    return [...Ins.simd(Simd.v128Const), ...lane, ...lane, ...lane, ...lane];
  },
};

/** Builds one function body from encoded instructions (see `Ins`). */
export class FuncBody {
  private readonly code: number[] = [];
  private readonly extraLocals: ValType[] = [];
  /** `params` are the function's parameter types; locals declared later get the next indices. */
  constructor(readonly params: readonly ValType[]) {}

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.extraLocals.push(type);
    return this.params.length + this.extraLocals.length - 1;
  }
  /** Appends instructions, in order. */
  emit(...instructions: number[][]): this {
    for (const ins of instructions) this.code.push(...ins);
    return this;
  }
  /** Encodes the body: local declarations (one group per local), code, final `end`. */
  encode(): number[] {
    const locals = vec(this.extraLocals.map((t) => [...uleb(1), t]));
    const body = [...locals, ...this.code, Op.end];
    return [...uleb(body.length), ...body];
  }
}

/** One exported function of a module. */
export interface FuncDef {
  name: string;
  body: FuncBody;
}

/** Emits a module with one exported, fixed-size memory (`memory`) and the given exported functions (no results). */
export function emitModule(memoryPages: number, funcs: readonly FuncDef[]): Uint8Array<ArrayBuffer> {
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const types = funcs.map((f) => [FUNC_TYPE, ...vec(f.body.params.map((t) => [t])), ...uleb(0)]);
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d], // "\0asm"
    ...[0x01, 0x00, 0x00, 0x00], // version 1
    ...section(SECTION.type, vec(types)),
    ...section(SECTION.function, vec(funcs.map((_, i) => uleb(i)))),
    ...section(SECTION.memory, vec([[LIMITS_MIN_MAX, ...uleb(memoryPages), ...uleb(memoryPages)]])),
    ...section(
      SECTION.export,
      vec([
        [...utf8('memory'), EXPORT_MEMORY, ...uleb(0)],
        ...funcs.map((f, i) => [...utf8(f.name), EXPORT_FUNC, ...uleb(i)]),
      ]),
    ),
    ...section(SECTION.code, vec(funcs.map((f) => f.body.encode()))),
  ];
  return Uint8Array.from(bytes);
}
