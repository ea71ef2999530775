/**
 * The shard format: one data shard of a sparse linear job (docs/workers.md §Shards), served by the
 * gateway at `/api/jobs/:job/shards/:i` and cached by tabs in IndexedDB. The held-out set uses the
 * same format. Little-endian; every array is a raw typed-array payload, aligned to its element size.
 *
 * ```
 * 0   u8   version (1)
 * 1   u8   classes        0: binary labels (0 or 1); C in [2, 255]: labels in [0, C)
 * 2   u16  reserved (0)
 * 4   u32  index          shard number (held-out: 0xffffffff by convention)
 * 8   u32  K              working-set keys
 * 12  u32  E              examples
 * 16  u32  N              non-zeros
 * 20  u32  reserved (0)
 * 24  u64 × K  keys       sorted ascending, unique, < 2^52 (lo u32, hi u32)
 *     u32 × (E+1) rowPtr  CSR row pointers: rowPtr[0] = 0, non-decreasing, rowPtr[E] = N
 *     u32 × N  col        working-set index of each non-zero; < K, strictly increasing within a row
 *     f32 × N  val        finite
 *     u8  × E  labels     0 or 1 (classes 0), else < classes
 * ```
 *
 * `decodeShard` is total, like `decodeFrame`: any byte string decodes into a well-formed shard or
 * throws a TabshardError (TS_ERR_FRAME_TRUNCATED / _VERSION / _MALFORMED, TS_ERR_KEYS_UNSORTED,
 * TS_ERR_KEY_OUT_OF_RANGE, TS_ERR_NON_FINITE); it allocates only after the length is checked.
 */
import { TabshardError } from '../errors.ts';

export const SHARD_VERSION = 1;
export const SHARD_HEADER_BYTES = 24;
/** Index used for the held-out set. */
export const HELDOUT_INDEX = 0xffffffff;

const TWO32 = 4294967296;

/** A decoded shard: examples in CSR form over the indices of its working-set keys. */
export interface DecodedShard {
  index: number;
  /** The keys the examples touch: sorted, unique, < 2^52. */
  keys: Float64Array;
  /** Length examples + 1. */
  rowPtr: Uint32Array;
  /** Index into `keys` of each non-zero. */
  col: Uint32Array;
  val: Float32Array;
  /** Binary (no `classes`): 1 = positive (spam), 0 = negative; else the class, < classes. */
  labels: Uint8Array;
  /** Number of classes of a multi-class shard (2-255); absent for binary labels. */
  classes?: number;
}

/** Bytes of the encoded shard with these counts. */
export function shardBytes(keys: number, examples: number, nnz: number): number {
  return SHARD_HEADER_BYTES + 8 * keys + 4 * (examples + 1) + 8 * nnz + examples;
}

/** Encodes `s` (assumed well-formed; `decodeShard(encodeShard(s))` checks it) into one buffer. */
export function encodeShard(s: DecodedShard): Uint8Array {
  const K = s.keys.length;
  const E = s.labels.length;
  const N = s.col.length;
  if (s.rowPtr.length !== E + 1 || s.val.length !== N)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'rowPtr, col, val and labels lengths disagree');
  const out = new Uint8Array(shardBytes(K, E, N));
  const dv = new DataView(out.buffer);
  dv.setUint8(0, SHARD_VERSION);
  dv.setUint8(1, s.classes ?? 0);
  dv.setUint32(4, s.index >>> 0, true);
  dv.setUint32(8, K, true);
  dv.setUint32(12, E, true);
  dv.setUint32(16, N, true);
  let off = SHARD_HEADER_BYTES;
  const keyWords = new Uint32Array(out.buffer, off, 2 * K);
  for (let i = 0; i < K; i++) {
    const k = s.keys[i];
    const lo = k % TWO32;
    keyWords[2 * i] = lo;
    keyWords[2 * i + 1] = (k - lo) / TWO32;
  }
  off += 8 * K;
  new Uint32Array(out.buffer, off, E + 1).set(s.rowPtr);
  off += 4 * (E + 1);
  new Uint32Array(out.buffer, off, N).set(s.col);
  off += 4 * N;
  new Float32Array(out.buffer, off, N).set(s.val);
  off += 4 * N;
  out.set(s.labels, off);
  return out;
}

const malformed = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', `shard: ${why}`);

/** A u32 view of `n` words at `off`, aliasing `buf` when aligned, else a copy. */
function u32At(buf: Uint8Array, off: number, n: number): Uint32Array {
  const at = buf.byteOffset + off;
  return at % 4 === 0 ? new Uint32Array(buf.buffer, at, n) : new Uint32Array(buf.slice(off, off + 4 * n).buffer);
}

/** Decodes one shard; total (see the file header). Row pointers, columns and values may alias `buf`. */
export function decodeShard(buf: Uint8Array): DecodedShard {
  if (buf.byteLength < SHARD_HEADER_BYTES)
    throw new TabshardError('TS_ERR_FRAME_TRUNCATED', `shard: ${buf.byteLength} < header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint8(0);
  if (version !== SHARD_VERSION) throw new TabshardError('TS_ERR_FRAME_VERSION', `shard version ${version}`);
  if (dv.getUint16(2, true) !== 0 || dv.getUint32(20, true) !== 0)
    throw malformed('reserved header bytes must be zero');
  const classes = dv.getUint8(1);
  if (classes === 1) throw malformed('classes must be 0 (binary) or at least 2');
  const index = dv.getUint32(4, true);
  const K = dv.getUint32(8, true);
  const E = dv.getUint32(12, true);
  const N = dv.getUint32(16, true);
  const total = shardBytes(K, E, N); // exact in a float64: below 2^40
  if (total > buf.byteLength)
    throw new TabshardError('TS_ERR_FRAME_TRUNCATED', `shard needs ${total} bytes, has ${buf.byteLength}`);
  if (total < buf.byteLength) throw malformed(`${buf.byteLength - total} trailing bytes`);

  let off = SHARD_HEADER_BYTES;
  const keys = readKeys(u32At(buf, off, 2 * K), K);
  off += 8 * K;
  const rowPtr = u32At(buf, off, E + 1);
  off += 4 * (E + 1);
  const col = u32At(buf, off, N);
  off += 4 * N;
  const valAt = buf.byteOffset + off;
  const val =
    valAt % 4 === 0 ? new Float32Array(buf.buffer, valAt, N) : new Float32Array(buf.slice(off, off + 4 * N).buffer);
  off += 4 * N;
  const labels = buf.subarray(off, off + E);

  if (rowPtr[0] !== 0 || rowPtr[E] !== N) throw malformed('row pointers must start at 0 and end at the non-zeros');
  const badRow = checkRows(rowPtr, col, K);
  if (badRow >= 0) throw malformed(`row ${badRow}: pointers decrease or columns are not increasing indices < ${K}`);
  for (let i = 0; i < N; i++) {
    if (!Number.isFinite(val[i])) throw new TabshardError('TS_ERR_NON_FINITE', `shard value ${i}`);
  }
  const top = classes === 0 ? 1 : classes - 1;
  for (let i = 0; i < E; i++)
    if (labels[i] > top) throw malformed(`label ${i} is ${labels[i]}, above ${top} (classes ${classes})`);
  return classes === 0 ? { index, keys, rowPtr, col, val, labels } : { index, keys, rowPtr, col, val, labels, classes };
}

function readKeys(words: Uint32Array, K: number): Float64Array {
  const keys = new Float64Array(K);
  let prev = -1;
  for (let i = 0; i < K; i++) {
    const hi = words[2 * i + 1];
    if (hi >= 1048576) throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', 'shard keys must be below 2^52');
    const k = hi * TWO32 + words[2 * i];
    if (k <= prev) throw new TabshardError('TS_ERR_KEYS_UNSORTED', `shard key ${i} not above key ${i - 1}`);
    keys[i] = k;
    prev = k;
  }
  return keys;
}

/** Returns -1 when every row is well-formed, else the first bad row. */
function checkRows(rowPtr: Uint32Array, col: Uint32Array, K: number): number {
  const E = rowPtr.length - 1;
  for (let r = 0; r < E; r++) {
    const a = rowPtr[r];
    const b = rowPtr[r + 1];
    if (b < a || b > col.length) return r;
    let prev = -1;
    for (let j = a; j < b; j++) {
      const c = col[j];
      if (c <= prev || c >= K) return r;
      prev = c;
    }
  }
  return -1;
}

/** Number of examples in `s`. */
export function shardExamples(s: DecodedShard): number {
  return s.labels.length;
}

/**
 * Builds a shard from examples given as sparse rows over global keys (each row's keys sorted and
 * unique): collects the working set and rewrites each row's keys as working-set indices.
 */
export function buildShard(
  index: number,
  rows: readonly { keys: Float64Array; values: Float32Array }[],
  labels: ArrayLike<number>,
): DecodedShard {
  let nnz = 0;
  for (const r of rows) nnz += r.keys.length;
  const all = new Float64Array(nnz);
  let o = 0;
  for (const r of rows) {
    all.set(r.keys, o);
    o += r.keys.length;
  }
  all.sort();
  let k = 0;
  for (let i = 0; i < nnz; i++) if (k === 0 || all[i] !== all[k - 1]) all[k++] = all[i];
  const keys = all.slice(0, k);
  const pos = new Map<number, number>();
  for (let i = 0; i < k; i++) pos.set(keys[i], i);
  const rowPtr = new Uint32Array(rows.length + 1);
  const col = new Uint32Array(nnz);
  const val = new Float32Array(nnz);
  o = 0;
  rows.forEach((r, i) => {
    for (let j = 0; j < r.keys.length; j++, o++) {
      col[o] = pos.get(r.keys[j])!;
      val[o] = r.values[j];
    }
    rowPtr[i + 1] = o;
  });
  return { index, keys, rowPtr, col, val, labels: Uint8Array.from(labels) };
}
