/**
 * The frame: tabshard's one binary envelope (PROTOCOL.md §Frame). A fixed 32-byte header, an
 * optional 16-byte task block, a key segment, a value segment; little-endian throughout.
 *
 * `encodeFrame` returns gather parts (the value segment is a view of the caller's array, never
 * copied). `decodeFrame` is total: any byte string either decodes into a well-formed `Frame`
 * (keys sorted, unique and < 2^52; lengths consistent) or throws a TabshardError, and it never
 * allocates more than a small multiple of the frame's own length.
 */
import { TabshardError } from '../errors.ts';
import { checkSortedKeys } from '../keys.ts';
import { type BufferPool, smallBytes } from '../pool.ts';
import { deflateKeys, inflateKeys, PACKED_KEYS_HEAD, packedKeysBytes } from './packed-keys.ts';
import { type PackedValues, segmentLengthError, unpackValues } from './values.ts';

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 32;
export const TASK_BYTES = 16;
/** Largest key any frame may carry, exclusive (keys are exact integers in a float64). */
export const KEY_LIMIT = 2 ** 52;

/** Message types: family in the high nibble (0 control, 1 kv, 2 replication, 3 signal). */
export const MsgType = {
  ERROR: 0x00,
  HELLO: 0x01,
  RING: 0x02,
  TABLE: 0x03,
  LEASE: 0x04,
  HEARTBEAT: 0x05,
  TASK: 0x06,
  TASK_DONE: 0x07,
  CLOCK: 0x08,
  STATS: 0x09,
  FENCE: 0x0a,
  CHECKPOINT: 0x0b,
  RESTORE: 0x0c,
  CAP: 0x0d,
  PUSH: 0x10,
  PULL: 0x11,
  PULL_REPLY: 0x12,
  ACK: 0x13,
  SUBSCRIBE: 0x14,
  UNSUBSCRIBE: 0x15,
  PUBLISH: 0x16,
  KEYSET: 0x17,
  FORWARD: 0x20,
  FORWARD_ACK: 0x21,
  MIGRATE: 0x22,
  SIGNAL: 0x30,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];
const KNOWN_TYPES = new Set<number>(Object.values(MsgType));

export const Flag = {
  /** A 16-byte task block (worker, task, attempt, seq) follows the header. */
  HAS_TASK: 1 << 0,
  /** On ACK: the push was a duplicate of one already applied; nothing changed. */
  DUPLICATE: 1 << 1,
  /** On a request: the sender expects no reply (fire and forget). Reserved. */
  NO_REPLY: 1 << 2,
  /** On a frame with a key list: the receiver remembers the list under its hash (key caching). */
  CACHE_KEYS: 1 << 3,
  /**
   * On a PUSH: a piece of a frame first sliced under an older ring, re-sliced after a failover,
   * under that frame's stamp. The node forwards its rows without the stamp (PROTOCOL.md §5.3).
   */
  RESLICED: 1 << 4,
  /**
   * On a FORWARD: the values are a held push's (n·d floats, PROTOCOL.md §6 TABLE `hold`), which
   * the receiver holds under the task stamp too, not rows to write.
   */
  HELD: 1 << 5,
  /** On a PULL or SUBSCRIBE: answer (publish) with F16 values (PROTOCOL.md §3.4); elsewhere malformed. */
  HALF: 1 << 6,
  /** On a PULL or SUBSCRIBE: deflate the reply's (publications') values where that pays; elsewhere malformed. */
  COMPRESS: 1 << 7,
  /**
   * On a SUBSCRIBE: the node may publish only what changed (PROTOCOL.md §5.1). On a PUBLISH: only
   * the values that changed since the subscription's previous publication; the key segment lists
   * their positions in the subscribed order. Elsewhere malformed.
   */
  CHANGED: 1 << 8,
} as const;
const KNOWN_FLAGS =
  Flag.HAS_TASK |
  Flag.DUPLICATE |
  Flag.NO_REPLY |
  Flag.CACHE_KEYS |
  Flag.RESLICED |
  Flag.HELD |
  Flag.HALF |
  Flag.COMPRESS |
  Flag.CHANGED;

export const KeyKind = { NONE: 0, RANGE: 1, LIST64: 2, DELTA32: 3, CACHED: 4, RANGES: 5, DEFLATED: 6 } as const;
export const ValueKind = { NONE: 0, F32: 1, BYTES: 2, F16: 3, COMPRESSED: 4, Q8: 5 } as const;

export interface TaskStamp {
  worker: number;
  task: number;
  attempt: number;
  seq: number;
}

/**
 * Keys of a frame: none, one range [begin, end), a sorted unique key list, or several ranges
 * (`bounds` = begin0, end0, begin1, end1, …: each range non-empty, each begin ≥ the previous end).
 */
export type KeySegment =
  | { kind: 'none' }
  | { kind: 'range'; begin: number; end: number }
  | { kind: 'list'; keys: Float64Array }
  | { kind: 'ranges'; bounds: Float64Array }
  | CachedKeys;

/** A key list named by its cache hash (key kind CACHED): `n` keys the receiver holds for this connection. */
export interface CachedKeys {
  kind: 'cached';
  hash: bigint;
  n: number;
}

export interface Frame {
  type: MsgType;
  flags: number;
  requestId: number;
  job: number;
  table: number;
  clock: number;
  task: TaskStamp | null;
  keys: KeySegment;
  /**
   * Value segment as float32: as sent (F32), or decoded from F16, Q8 or COMPRESSED. To encode,
   * `packed` may give the segment already encoded instead.
   */
  values: Float32Array | null;
  /** Value segment as opaque bytes (ValueKind.BYTES; UTF-8 JSON in the control family). */
  body: Uint8Array | null;
  /** Encoding only: a float segment already packed (shared/protocol/values.ts), sent as it is. */
  packed?: PackedValues;
  /**
   * Decoded frames whose values came packed (F16, Q8, COMPRESSED): the segment's kind and its
   * length on the wire (what the values cost; for F32 it is `values.byteLength`).
   */
  valueKind?: number;
  valueBytes?: number;
}

export const NO_KEYS: KeySegment = { kind: 'none' };

/** A frame with every optional part empty; spread it and set what a message needs. */
export function emptyFrame(type: MsgType, requestId = 0): Frame {
  return { type, flags: 0, requestId, job: 0, table: 0, clock: 0, task: null, keys: NO_KEYS, values: null, body: null };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) throw new Error('tabshard needs a little-endian platform (typed arrays alias the wire format)');

const TWO32 = 4294967296;

// The hot loops live in small functions of their own so V8 optimises each tightly.

/** Writes keys[1..] as u32 gaps after the first key's two words; false as soon as a gap needs more. */
function writeDelta32(list: Float64Array, u32: Uint32Array): boolean {
  let prev = list[0];
  for (let i = 1; i < list.length; i++) {
    const k = list[i];
    const d = k - prev;
    if (d >= TWO32) return false;
    u32[i + 1] = d;
    prev = k;
  }
  return true;
}

/**
 * `writeDelta32` that also checks each key is an integer above its predecessor (written so that
 * NaN fails); false on the first gap that is not a positive integer below 2^32.
 */
function writeDelta32Checked(list: Float64Array, u32: Uint32Array): boolean {
  let prev = list[0];
  for (let i = 1; i < list.length; i++) {
    const k = list[i];
    const d = k - prev;
    if (!(d > 0 && d < TWO32 && Math.floor(k) === k)) return false;
    u32[i + 1] = d;
    prev = k;
  }
  return true;
}

function writeList64(list: Float64Array, u32: Uint32Array): void {
  for (let i = 1, j = 2; i < list.length; i++, j += 2) {
    const k = list[i];
    const lo = k % TWO32;
    u32[j] = lo;
    u32[j + 1] = (k - lo) / TWO32;
  }
}

/** Little-endian u32 into a byte array (the header is written byte-wise: no view to allocate). */
function put32(b: Uint8Array, off: number, x: number): void {
  b[off] = x;
  b[off + 1] = x >>> 8;
  b[off + 2] = x >>> 16;
  b[off + 3] = x >>> 24;
}

/** Little-endian u64 (an integer below 2^53) into a byte array. */
function put64(b: Uint8Array, off: number, x: number): void {
  put32(b, off, x % TWO32);
  put32(b, off + 4, Math.floor(x / TWO32));
}

/** A key list's head (header + task block + key segment), with the key segment written. */
function listHead(list: Float64Array, at: number, opts: EncodeOptions): { head: Uint8Array; kind: number } {
  const { pool, keySpace } = opts;
  const n = list.length;
  const take = (bytes: number) => (pool ? pool.take(bytes) : smallBytes(bytes));
  if (n === 0) return { head: smallBytes(at), kind: KeyKind.LIST64 };
  // DELTA32 when every gap fits a u32 (found out while writing it), else LIST64.
  let head = take(at + 8 + 4 * (n - 1));
  // `at` and the head's offset are multiples of 4 (8 for pooled and slab arrays): the view is aligned.
  let u32 = new Uint32Array(head.buffer, head.byteOffset + at, n + 1);
  u32[0] = list[0] % TWO32;
  u32[1] = Math.floor(list[0] / TWO32);
  if (keySpace === undefined) {
    if (writeDelta32(list, u32)) return packed(head, KeyKind.DELTA32, at, opts);
  } else {
    const k0 = list[0];
    const last = list[n - 1];
    if (k0 >= 0 && Math.floor(k0) === k0 && last < keySpace && writeDelta32Checked(list, u32))
      return packed(head, KeyKind.DELTA32, at, opts);
    // A bad key (throws the error checkSortedKeys reports) or a gap of 2^32 or more (LIST64).
    checkSortedKeys(list, keySpace);
  }
  pool?.give(head);
  head = take(at + 8 * n);
  u32 = new Uint32Array(head.buffer, head.byteOffset + at, 2 * n);
  u32[0] = list[0] % TWO32;
  u32[1] = Math.floor(list[0] / TWO32);
  writeList64(list, u32);
  return packed(head, KeyKind.LIST64, at, opts);
}

/** `head` with its key segment (of `kind`, from `at`) deflated when `opts.deflateKeys` asks and it pays. */
function packed(head: Uint8Array, kind: number, at: number, opts: EncodeOptions): { head: Uint8Array; kind: number } {
  if (!opts.deflateKeys) return { head, kind };
  const out = deflateKeys(head.subarray(at), kind, at);
  if (out === null) return { head, kind };
  opts.pool?.give(head);
  return { head: out, kind: KeyKind.DEFLATED };
}

/** Rewrites the request id of an encoded frame in place (a message encoded before its id was known). */
export function setRequestId(head: Uint8Array, requestId: number): void {
  put32(head, 4, requestId);
}

export interface EncodeOptions {
  /** Lend a large head (a long key list) from this pool: give `parts[0]` back once sent (onSent). */
  pool?: BufferPool;
  /**
   * Check a key list while encoding it, as `checkSortedKeys(keys, keySpace)` would (same codes),
   * instead of in a pass of its own; without it, keys must already be sorted and unique.
   */
  keySpace?: number;
  /** Deflate a key list where that pays (key kind DEFLATED, PROTOCOL.md §3.3.1). */
  deflateKeys?: boolean;
}

/**
 * Encodes a frame into gather parts: [header + task + key segment, ...value segment]. The value
 * segment is `valueParts` (concatenated on the wire) when given, else `f.values` or `f.body`; it
 * is never copied. Keys must already be sorted and unique unless `opts.keySpace` asks for the
 * check. With `opts.pool`, see EncodeOptions.
 */
export function encodeFrame(f: Frame, valueParts?: readonly Float32Array[], opts: EncodeOptions = {}): Uint8Array[] {
  const at = HEADER_BYTES + (f.task ? TASK_BYTES : 0);
  let head: Uint8Array;
  let keyKind: number;
  let keyCount = 0;
  const keys = f.keys;
  if (keys.kind === 'list') {
    ({ head, kind: keyKind } = listHead(keys.keys, at, opts));
    keyCount = keys.keys.length;
  } else if (keys.kind === 'range') {
    head = smallBytes(at + 16);
    keyKind = KeyKind.RANGE;
    put64(head, at, keys.begin);
    put64(head, at + 8, keys.end);
  } else if (keys.kind === 'cached') {
    head = smallBytes(at + 8);
    keyKind = KeyKind.CACHED;
    keyCount = keys.n;
    put32(head, at, Number(keys.hash & 0xffffffffn));
    put32(head, at + 4, Number((keys.hash >> 32n) & 0xffffffffn));
  } else if (keys.kind === 'ranges') {
    const b = keys.bounds;
    keyCount = b.length >> 1;
    head = opts.pool ? opts.pool.take(at + 8 * b.length) : smallBytes(at + 8 * b.length);
    keyKind = KeyKind.RANGES;
    for (let i = 0; i < b.length; i++) put64(head, at + 8 * i, b[i]);
  } else {
    head = smallBytes(at);
    keyKind = KeyKind.NONE;
  }
  const out: Uint8Array[] = [head];
  let valueBytes = 0;
  let valueKind: number = ValueKind.NONE;
  const floats = valueParts ?? (f.values ? [f.values] : null);
  if (f.packed) {
    valueKind = f.packed.kind;
    valueBytes = f.packed.bytes.byteLength;
    if (valueBytes > 0) out.push(f.packed.bytes);
  } else if (floats) {
    valueKind = ValueKind.F32;
    for (let i = 0; i < floats.length; i++) {
      const v = floats[i];
      valueBytes += v.byteLength;
      if (v.byteLength > 0) out.push(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
  } else if (f.body) {
    valueKind = ValueKind.BYTES;
    valueBytes = f.body.byteLength;
    if (valueBytes > 0) out.push(f.body);
  }
  head[0] = PROTOCOL_VERSION;
  head[1] = f.type;
  const flags = f.task ? f.flags | Flag.HAS_TASK : f.flags & ~Flag.HAS_TASK;
  head[2] = flags;
  head[3] = flags >>> 8;
  put32(head, 4, f.requestId);
  put32(head, 8, f.job);
  put32(head, 12, f.table);
  put32(head, 16, f.clock);
  head[20] = keyKind;
  head[21] = valueKind;
  head[22] = 0;
  head[23] = 0;
  put32(head, 24, keyCount);
  put32(head, 28, valueBytes);
  if (f.task) {
    put32(head, 32, f.task.worker);
    put32(head, 36, f.task.task);
    put32(head, 40, f.task.attempt);
    put32(head, 44, f.task.seq);
  }
  return out;
}

/** Reads a u64 key (< 2^52), or a range end (<= 2^52) when `isEnd`. */
function readKey(dv: DataView, off: number, isEnd = false): number {
  const k = dv.getUint32(off + 4, true) * TWO32 + dv.getUint32(off, true);
  if (isEnd ? k > KEY_LIMIT : k >= KEY_LIMIT)
    throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', 'keys must be below 2^52');
  return k;
}

const malformed = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

/**
 * Returns an array of at least `n` keys to decode a key list into (the decoder uses its first
 * `n`); lets a receiver that consumes frames at once reuse one array instead of allocating.
 */
export type KeyScratch = (n: number) => Float64Array;

/**
 * Decodes one frame; total (see the file header). The frame may alias `buf`. With `scratch`, a
 * key list is decoded into the array it returns (so the frame's keys are only valid until the
 * scratch is reused); it is asked only after the frame's lengths have been checked.
 */
export function decodeFrame(buf: Uint8Array, scratch?: KeyScratch): Frame {
  if (buf.byteLength < HEADER_BYTES) throw new TabshardError('TS_ERR_FRAME_TRUNCATED', `${buf.byteLength} < header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint8(0);
  if (version !== PROTOCOL_VERSION) throw new TabshardError('TS_ERR_FRAME_VERSION', `version ${version}`);
  const type = dv.getUint8(1);
  if (!KNOWN_TYPES.has(type)) throw new TabshardError('TS_ERR_FRAME_TYPE', `type 0x${type.toString(16)}`);
  const flags = dv.getUint16(2, true);
  if (flags & ~KNOWN_FLAGS) throw malformed(`unknown flags 0x${flags.toString(16)}`);
  const keyKind = dv.getUint8(20);
  const valueKind = dv.getUint8(21);
  if (dv.getUint16(22, true) !== 0) throw malformed('reserved header bytes must be zero');
  const n = dv.getUint32(24, true);
  const valueBytes = dv.getUint32(28, true);
  let off = HEADER_BYTES;
  let task: TaskStamp | null = null;
  if (flags & Flag.HAS_TASK) {
    if (buf.byteLength < off + TASK_BYTES) throw new TabshardError('TS_ERR_FRAME_TRUNCATED', 'task block');
    task = {
      worker: dv.getUint32(off, true),
      task: dv.getUint32(off + 4, true),
      attempt: dv.getUint32(off + 8, true),
      seq: dv.getUint32(off + 12, true),
    };
    off += TASK_BYTES;
  }
  // Every length is checked against the bytes actually present before anything is allocated.
  let keyBytes = keySegmentBytes(keyKind, n);
  if (keyBytes < 0) throw malformed(`key kind ${keyKind} not supported`);
  if (keyKind === KeyKind.DEFLATED) {
    if (buf.byteLength < off + PACKED_KEYS_HEAD)
      throw new TabshardError('TS_ERR_FRAME_TRUNCATED', 'deflated keys head');
    keyBytes = packedKeysBytes(dv, off);
  }
  if ((keyKind === KeyKind.NONE || keyKind === KeyKind.RANGE) && n !== 0)
    throw malformed('key count without a key list');
  if (
    flags & Flag.CACHE_KEYS &&
    keyKind !== KeyKind.LIST64 &&
    keyKind !== KeyKind.DELTA32 &&
    keyKind !== KeyKind.DEFLATED
  )
    throw malformed('CACHE_KEYS without a key list');
  if (flags & (Flag.HALF | Flag.COMPRESS) && type !== MsgType.PULL && type !== MsgType.SUBSCRIBE)
    throw malformed('HALF or COMPRESS on a frame not a PULL or SUBSCRIBE');
  if (flags & Flag.CHANGED && type !== MsgType.SUBSCRIBE && type !== MsgType.PUBLISH)
    throw malformed('CHANGED on a frame not a SUBSCRIBE or PUBLISH');
  if (valueKind > ValueKind.Q8) throw malformed(`value kind ${valueKind} not supported`);
  if (valueKind === ValueKind.NONE && valueBytes !== 0) throw malformed('value bytes without a value kind');
  const lengthError = segmentLengthError(valueKind, valueBytes);
  if (lengthError) throw malformed(lengthError);
  const total = off + keyBytes + valueBytes;
  if (total > buf.byteLength)
    throw new TabshardError('TS_ERR_FRAME_TRUNCATED', `needs ${total} bytes, has ${buf.byteLength}`);
  if (total < buf.byteLength) throw malformed(`${buf.byteLength - total} trailing bytes`);

  let keys: KeySegment = NO_KEYS;
  if (keyKind === KeyKind.RANGE) {
    const begin = readKey(dv, off);
    const end = readKey(dv, off + 8, true);
    if (end < begin) throw malformed('range end before begin');
    keys = { kind: 'range', begin, end };
  } else if (keyKind === KeyKind.LIST64 || keyKind === KeyKind.DELTA32) {
    keys = { kind: 'list', keys: decodeKeyList(buf, dv, off, n, keyKind === KeyKind.DELTA32, scratch) };
  } else if (keyKind === KeyKind.DEFLATED) {
    const { delta, bytes } = inflateKeys(buf.subarray(off, off + keyBytes), n);
    const inner = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    keys = { kind: 'list', keys: decodeKeyList(bytes, inner, 0, n, delta, scratch) };
  } else if (keyKind === KeyKind.RANGES) {
    keys = { kind: 'ranges', bounds: decodeRanges(dv, off, n) };
  } else if (keyKind === KeyKind.CACHED) {
    keys = { kind: 'cached', hash: (BigInt(dv.getUint32(off + 4, true)) << 32n) | BigInt(dv.getUint32(off, true)), n };
  }
  off += keyBytes;

  let values: Float32Array | null = null;
  let body: Uint8Array | null = null;
  if (valueKind !== ValueKind.NONE && valueKind !== ValueKind.BYTES) {
    values = unpackValues(valueKind, buf.subarray(off, off + valueBytes));
  } else if (valueKind === ValueKind.BYTES) {
    body = buf.subarray(off, off + valueBytes);
  }
  const frame: Frame = {
    type: type as MsgType,
    flags,
    requestId: dv.getUint32(4, true),
    job: dv.getUint32(8, true),
    table: dv.getUint32(12, true),
    clock: dv.getInt32(16, true),
    task,
    keys,
    values,
    body,
  };
  if (valueKind > ValueKind.BYTES) {
    frame.valueKind = valueKind;
    frame.valueBytes = valueBytes;
  }
  return frame;
}

/** Bytes of a key segment of `kind` with count `n` (-1: a kind this decoder does not accept). */
function keySegmentBytes(kind: number, n: number): number {
  switch (kind) {
    case KeyKind.NONE:
      return 0;
    case KeyKind.RANGE:
      return 16;
    case KeyKind.LIST64:
      return 8 * n;
    case KeyKind.DELTA32:
      return n === 0 ? 0 : 8 + 4 * (n - 1);
    case KeyKind.RANGES:
      return 16 * n;
    case KeyKind.CACHED:
      return 8;
    case KeyKind.DEFLATED:
      return 0; // read from its head (packedKeysBytes)
    default:
      return -1;
  }
}

/** `n` ranges as begin/end pairs, each non-empty and starting at or after the previous end. */
function decodeRanges(dv: DataView, off: number, n: number): Float64Array {
  const bounds = new Float64Array(2 * n);
  let prevEnd = 0;
  for (let i = 0; i < n; i++, off += 16) {
    const begin = readKey(dv, off);
    const end = readKey(dv, off + 8, true);
    if (end <= begin) throw malformed(`range ${i} is empty or reversed`);
    if (begin < prevEnd)
      throw new TabshardError('TS_ERR_KEYS_UNSORTED', `range ${i} starts before range ${i - 1} ends`);
    bounds[2 * i] = begin;
    bounds[2 * i + 1] = end;
    prevEnd = end;
  }
  return bounds;
}

function decodeKeyList(
  buf: Uint8Array,
  dv: DataView,
  off: number,
  n: number,
  delta: boolean,
  scratch: KeyScratch | undefined,
): Float64Array {
  const keys = scratch ? scratch(n).subarray(0, n) : new Float64Array(n);
  if (n === 0) return keys;
  const first = readKey(dv, off);
  keys[0] = first;
  const at = buf.byteOffset + off;
  const words = delta ? n + 1 : 2 * n;
  const u32 =
    at % 4 === 0 ? new Uint32Array(buf.buffer, at, words) : new Uint32Array(buf.slice(off, off + 4 * words).buffer);
  const bad = delta ? readDelta32(u32, keys) : readList64(u32, keys);
  if (bad > 0) throw new TabshardError('TS_ERR_KEYS_UNSORTED', `key ${bad} not above key ${bad - 1}`);
  if (bad < 0) throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', 'keys must be below 2^52');
  return keys;
}

/** Prefix-sums u32 deltas into keys[1..]; returns 0, the index of a zero delta, or -1 past 2^52. */
function readDelta32(u32: Uint32Array, keys: Float64Array): number {
  let prev = keys[0];
  for (let i = 1; i < keys.length; i++) {
    const d = u32[i + 1];
    if (d === 0) return i;
    prev += d;
    keys[i] = prev;
  }
  return prev >= KEY_LIMIT ? -1 : 0;
}

/** Reads u64 keys into keys[1..]; returns 0, the index of a key not above its predecessor, or -1. */
function readList64(u32: Uint32Array, keys: Float64Array): number {
  let prev = keys[0];
  for (let i = 1, j = 2; i < keys.length; i++, j += 2) {
    const hi = u32[j + 1];
    if (hi >= 1048576) return -1;
    const k = hi * TWO32 + u32[j];
    if (k <= prev) return i;
    keys[i] = k;
    prev = k;
  }
  return 0;
}
