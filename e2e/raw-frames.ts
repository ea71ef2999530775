/**
 * A minimal client of the wire protocol written from PROTOCOL.md alone (§2.1 TCP framing, §2.5
 * relays, §3 frames, §4 types, §6.1 sessions), as an outsider would write one: it builds frames
 * byte by byte and reads ERROR replies, decodes and re-encodes whole frames (every key kind, the
 * task block), and rewrites a worker's pushes in flight (`Tamperer`). e2e tests use it to play a
 * hostile client, bench/attack a hostile worker; nothing here comes from the project's own code.
 */
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

/** PROTOCOL.md §4. */
export const T = {
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
  CAP: 0x0d,
  PUSH: 0x10,
  PULL: 0x11,
  PULL_REPLY: 0x12,
  ACK: 0x13,
  SUBSCRIBE: 0x14,
  KEYSET: 0x17,
  FORWARD: 0x20,
  MIGRATE: 0x22,
} as const;

export interface RawFrame {
  type: number;
  flags: number;
  requestId: number;
  body: Uint8Array;
}

export interface FrameSpec {
  type: number;
  requestId: number;
  job?: number;
  table?: number;
  /** RANGE keys [begin, end) (key kind 1). */
  range?: [number, number];
  /** Task block (worker, task, attempt, seq). */
  task?: [number, number, number, number];
  /** F32 values (value kind 1). */
  values?: number[];
  /** A JSON body (value kind 2, BYTES). */
  json?: unknown;
  /** Raw BYTES value. */
  bytes?: Uint8Array;
}

/** Encodes one frame (§3): header, optional task block, RANGE or no keys, F32 or BYTES values. */
export function frame(s: FrameSpec): Uint8Array {
  const keyBytes = s.range ? 16 : 0;
  const value =
    s.json !== undefined
      ? new TextEncoder().encode(JSON.stringify(s.json))
      : s.bytes !== undefined
        ? s.bytes
        : s.values
          ? new Uint8Array(Float32Array.from(s.values).buffer)
          : new Uint8Array(0);
  const valueKind = s.json !== undefined || s.bytes !== undefined ? 2 : s.values ? 1 : 0;
  const taskBytes = s.task ? 16 : 0;
  const keyPad = 0; // the key segment is a multiple of 4 bytes for these kinds
  const out = new Uint8Array(32 + taskBytes + keyBytes + keyPad + value.byteLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, 1);
  v.setUint8(1, s.type);
  v.setUint16(2, s.task ? 1 : 0, true);
  v.setUint32(4, s.requestId, true);
  v.setUint32(8, s.job ?? 0, true);
  v.setUint32(12, s.table ?? 0, true);
  v.setInt32(16, 0, true);
  v.setUint8(20, s.range ? 1 : 0);
  v.setUint8(21, valueKind);
  v.setUint32(24, 0, true);
  v.setUint32(28, value.byteLength, true);
  let o = 32;
  if (s.task) {
    for (const x of s.task) {
      v.setUint32(o, x, true);
      o += 4;
    }
  }
  if (s.range) {
    for (const x of s.range) {
      v.setUint32(o, x % 2 ** 32, true);
      v.setUint32(o + 4, Math.floor(x / 2 ** 32), true);
      o += 8;
    }
  }
  out.set(value, o);
  return out;
}

export function parse(msg: Uint8Array): RawFrame {
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(2, true);
  const task = flags & 1 ? 16 : 0;
  const keyKind = v.getUint8(20);
  const n = v.getUint32(24, true);
  const keyBytes = keyKind === 1 ? 16 : keyKind === 2 ? 8 * n : keyKind === 5 ? 16 * n : 0;
  const start = 32 + task + keyBytes;
  return {
    type: v.getUint8(1),
    flags,
    requestId: v.getUint32(4, true),
    body: msg.subarray(start, start + v.getUint32(28, true)),
  };
}

/** The JSON of a control reply (HELLO, STATS, ERROR …). */
export function json(f: RawFrame): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(f.body));
}

/** One connection speaking frames: `call` sends a frame and resolves with the reply of its request id. */
export interface RawConn {
  call(s: Omit<FrameSpec, 'requestId'>): Promise<RawFrame>;
  close(): void;
}

function matcher() {
  let next = 1;
  const pending = new Map<number, (f: RawFrame) => void>();
  return {
    id: () => next++,
    wait: (id: number) => new Promise<RawFrame>((resolve) => pending.set(id, resolve)),
    deliver(msg: Uint8Array) {
      const f = parse(msg);
      const r = pending.get(f.requestId);
      if (r && f.requestId !== 0) {
        pending.delete(f.requestId);
        r(f);
      }
    },
  };
}

/** A TCP connection to `tcp://host:port` with §2.1 framing (u32 length, then the frame). */
export async function tcp(address: string): Promise<RawConn> {
  const url = new URL(address);
  const sock: Socket = connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const m = matcher();
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
      const len = buf.readUInt32LE(0);
      m.deliver(new Uint8Array(buf.subarray(4, 4 + len)));
      buf = buf.subarray(4 + len);
    }
  });
  return {
    call(s) {
      const id = m.id();
      const f = frame({ ...s, requestId: id });
      const len = Buffer.alloc(4);
      len.writeUInt32LE(f.byteLength, 0);
      sock.write(Buffer.concat([len, f]));
      return m.wait(id);
    },
    close: () => sock.destroy(),
  };
}

/** The error code of a reply ('ok' when it is not an ERROR). */
export function codeOf(f: RawFrame): string {
  return f.type === T.ERROR ? String(json(f).code) : 'ok';
}

// ---- Whole frames: decoding and encoding every key kind (§3.3) and the task block (§3.2) ----

/** PROTOCOL.md §3.5. */
export const FLAG = { HAS_TASK: 0x1, DUPLICATE: 0x2, CACHE_KEYS: 0x8 } as const;

/** A key segment (§3.3); a CACHED segment's hash as its two u32 halves. */
export type Keys =
  | { kind: 'none' }
  | { kind: 'range'; begin: number; end: number }
  | { kind: 'list'; keys: number[] }
  | { kind: 'cached'; lo: number; hi: number; n: number }
  | { kind: 'ranges'; ranges: Array<[number, number]> };

/** Every field of a frame (§3). */
export interface Frame {
  type: number;
  flags: number;
  requestId: number;
  job: number;
  table: number;
  clock: number;
  valueKind: number;
  /** worker, task, attempt, seq; null without HAS_TASK. */
  task: [number, number, number, number] | null;
  keys: Keys;
  /** The value segment's bytes. */
  value: Uint8Array;
}

const u64 = (v: DataView, o: number) => v.getUint32(o, true) + v.getUint32(o + 4, true) * 2 ** 32;
function setU64(v: DataView, o: number, x: number): void {
  v.setUint32(o, x % 2 ** 32, true);
  v.setUint32(o + 4, Math.floor(x / 2 ** 32), true);
}

/**
 * Decodes a frame the reference worker or a node built (it trusts lengths and order; a frame
 * that does not add up throws).
 */
export function decode(msg: Uint8Array): Frame {
  if (msg.byteLength < 32) throw new Error(`frame of ${msg.byteLength} bytes`);
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(2, true);
  let o = 32;
  let task: Frame['task'] = null;
  if (flags & FLAG.HAS_TASK) {
    task = [v.getUint32(32, true), v.getUint32(36, true), v.getUint32(40, true), v.getUint32(44, true)];
    o = 48;
  }
  const keyKind = v.getUint8(20);
  const n = v.getUint32(24, true);
  let keys: Keys;
  switch (keyKind) {
    case 0:
      keys = { kind: 'none' };
      break;
    case 1:
      keys = { kind: 'range', begin: u64(v, o), end: u64(v, o + 8) };
      o += 16;
      break;
    case 2: {
      const list: number[] = [];
      for (let i = 0; i < n; i++) list.push(u64(v, o + 8 * i));
      keys = { kind: 'list', keys: list };
      o += 8 * n;
      break;
    }
    case 3: {
      const list: number[] = [];
      if (n > 0) {
        let k = u64(v, o);
        list.push(k);
        for (let i = 1; i < n; i++) {
          k += v.getUint32(o + 8 + 4 * (i - 1), true);
          list.push(k);
        }
        o += 8 + 4 * (n - 1);
      }
      keys = { kind: 'list', keys: list };
      break;
    }
    case 4:
      keys = { kind: 'cached', lo: v.getUint32(o, true), hi: v.getUint32(o + 4, true), n };
      o += 8;
      break;
    case 5: {
      const ranges: Array<[number, number]> = [];
      for (let i = 0; i < n; i++) ranges.push([u64(v, o + 16 * i), u64(v, o + 16 * i + 8)]);
      keys = { kind: 'ranges', ranges };
      o += 16 * n;
      break;
    }
    default:
      throw new Error(`key kind ${keyKind}`);
  }
  const valueBytes = v.getUint32(28, true);
  if (o + valueBytes !== msg.byteLength)
    throw new Error(`frame of ${msg.byteLength} bytes, segments ${o + valueBytes}`);
  return {
    type: v.getUint8(1),
    flags,
    requestId: v.getUint32(4, true),
    job: v.getUint32(8, true),
    table: v.getUint32(12, true),
    clock: v.getInt32(16, true),
    valueKind: v.getUint8(21),
    task,
    keys,
    value: msg.slice(o),
  };
}

/**
 * Encodes a frame: HAS_TASK iff it has a task block; a key list as DELTA32 when it is non-empty
 * and every gap fits a u32, else LIST64 (the reference encoder's choice, §3.3).
 */
export function encode(f: Frame): Uint8Array {
  const k = f.keys;
  const delta =
    k.kind === 'list' && k.keys.length > 0 && k.keys.every((x, i) => i === 0 || x - k.keys[i - 1] < 2 ** 32);
  const keyBytes =
    k.kind === 'range'
      ? 16
      : k.kind === 'list'
        ? delta
          ? 8 + 4 * (k.keys.length - 1)
          : 8 * k.keys.length
        : k.kind === 'cached'
          ? 8
          : k.kind === 'ranges'
            ? 16 * k.ranges.length
            : 0;
  const taskBytes = f.task ? 16 : 0;
  const out = new Uint8Array(32 + taskBytes + keyBytes + f.value.byteLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, 1);
  v.setUint8(1, f.type);
  v.setUint16(2, f.task ? f.flags | FLAG.HAS_TASK : f.flags & ~FLAG.HAS_TASK, true);
  v.setUint32(4, f.requestId, true);
  v.setUint32(8, f.job, true);
  v.setUint32(12, f.table, true);
  v.setInt32(16, f.clock, true);
  const kinds = { none: 0, range: 1, list: delta ? 3 : 2, cached: 4, ranges: 5 } as const;
  v.setUint8(20, kinds[k.kind]);
  v.setUint8(21, f.valueKind);
  const n = k.kind === 'list' ? k.keys.length : k.kind === 'cached' ? k.n : k.kind === 'ranges' ? k.ranges.length : 0;
  v.setUint32(24, n, true);
  v.setUint32(28, f.value.byteLength, true);
  let o = 32;
  if (f.task) {
    for (const x of f.task) {
      v.setUint32(o, x, true);
      o += 4;
    }
  }
  if (k.kind === 'range') {
    setU64(v, o, k.begin);
    setU64(v, o + 8, k.end);
  } else if (k.kind === 'list' && delta) {
    setU64(v, o, k.keys[0]);
    for (let i = 1; i < k.keys.length; i++) v.setUint32(o + 8 + 4 * (i - 1), k.keys[i] - k.keys[i - 1], true);
  } else if (k.kind === 'list') {
    for (let i = 0; i < k.keys.length; i++) setU64(v, o + 8 * i, k.keys[i]);
  } else if (k.kind === 'cached') {
    v.setUint32(o, k.lo, true);
    v.setUint32(o + 4, k.hi, true);
  } else if (k.kind === 'ranges') {
    for (let i = 0; i < k.ranges.length; i++) {
      setU64(v, o + 16 * i, k.ranges[i][0]);
      setU64(v, o + 16 * i + 8, k.ranges[i][1]);
    }
  }
  out.set(f.value, 32 + taskBytes + keyBytes);
  return out;
}

/** The F32 values of a value segment (a copy). */
export function floats(value: Uint8Array): Float32Array {
  return new Float32Array(value.slice().buffer);
}

/** A value segment holding `values`. */
export function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** The reply code of any reply message: an ERROR's code, 'DUPLICATE' for an ACK with that flag, else 'ok'. */
export function replyCode(msg: Uint8Array): string {
  const f = parse(msg);
  if (f.type === T.ERROR) return codeOf(f);
  return f.flags & FLAG.DUPLICATE ? 'DUPLICATE' : 'ok';
}

/** A bare ACK (§5) of `requestId`, as a node sends it. */
export function ack(requestId: number): Uint8Array {
  return frame({ type: T.ACK, requestId });
}

/** A WebSocket upgrade the gateway refused with an HTTP answer (§2.5: status, `{code, message}`). */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    body: string,
  ) {
    super(`upgrade refused: HTTP ${status} ${body}`);
  }
}

/**
 * A WebSocket speaking frames, one per binary message: a relay (`/relay/<n>/data`, §2.5) or a
 * scheduler session (`/api/jobs/:job/session`, §6.1). A refused upgrade rejects with
 * UpgradeRefused.
 */
export async function socket(url: string): Promise<RawConn> {
  const ws = new WebSocket(url);
  ws.on('error', () => {}); // reported through the promise below, or a closed connection
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        let code = '';
        try {
          code = String(JSON.parse(body).code);
        } catch {
          // not the gateway's error body
        }
        reject(new UpgradeRefused(res.statusCode ?? 0, code, body));
        ws.terminate();
      });
    });
  });
  const m = matcher();
  ws.on('message', (d: Buffer) => m.deliver(new Uint8Array(d)));
  return {
    call(s) {
      const id = m.id();
      ws.send(frame({ ...s, requestId: id }));
      return m.wait(id);
    },
    close: () => ws.close(),
  };
}

// ---- Tampering: a malicious worker's frames, rewritten on their way to the nodes ----

/**
 * What a malicious worker does to its pushes of one task (e2e/attack.test.ts, bench/attack):
 *
 * - honest: nothing.
 * - scale1e6, flip100, flip1: the gradient × 1e6, × −100, × −1.
 * - noise: Gaussian noise (seeded) of L2 norm 10 × the table's norm bound instead of the gradient.
 * - noise-inbound: Gaussian noise of half the norm bound (and at most half the value bound per
 *   value) instead of the gradient: poison the bounds let through.
 * - nan: the gradient with one value NaN.
 * - outside-keys: the frame's keys plus up to 64 keys outside the task (keys other tasks sent to
 *   the same node on this connection, so the node owns them and only the capability refuses them).
 * - replay: the client's frames go through; then each is sent again as it was, and so are the
 *   last frames this connection had applied, from earlier tasks (exact bytes, new request ids).
 * - reseq: the client's frames go through, then each again under a seq the worker never uses.
 * - restamp: the frames stamped with task + shards (the same shard's task of the next
 *   iteration, leased to nobody yet under BSP: pre-empting its (task, seq) so its honest push
 *   would be dropped as a duplicate).
 */
export type Attack =
  | 'honest'
  | 'scale1e6'
  | 'flip100'
  | 'flip1'
  | 'noise'
  | 'noise-inbound'
  | 'nan'
  | 'outside-keys'
  | 'replay'
  | 'reseq'
  | 'restamp';

export interface TamperOptions {
  job: number;
  /** The table whose pushes are attacked (the model); pushes to other tables (the audit) go through. */
  table: number;
  /** That table's bounds (§6 TABLE), for the noise and for predicting each reply. */
  bounds: { value?: number; norm?: number };
  /** The job's shards (restamp's task offset). */
  shards: number;
  /** The attack on each new task, in turn (the first task seen gets attacks[0], …, cycling). */
  attacks: Attack[];
  seed: number;
  /** Earlier applied frames a replay sends again, at most (default 8). */
  replays?: number;
  /** Tasks from this id on are pushed honestly (default: none). */
  honestFrom?: number;
  /** XXH64 of the 8-byte little-endian float64 keys (§5.2), to read CACHED keys (xxhash-wasm's h64Raw). */
  h64: (bytes: Uint8Array) => bigint;
}

/** What one attack (or the frames let through) got. */
export interface Tally {
  /** Tasks it was applied to. */
  tasks: number;
  /** Frames it sent (altered in place of the client's, or extra). */
  sent: number;
  /** Replies by code: 'ok', 'DUPLICATE' or the ERROR's code. */
  codes: Record<string, number>;
  /** Frames it sent that a node applied (ACK without DUPLICATE). */
  applied: number;
  /** The tasks of those frames. */
  appliedTasks: number[];
  /** Frames sent as they were because the attack could not be built (outside-keys before it saw foreign keys). */
  skipped: number;
  /** Frames within 1e-9 of a bound: the node's float64 sum (another order) may go either way, not predicted. */
  marginal: number;
  /** Replies other than PROTOCOL.md predicts for the frame sent (the first 20). */
  unexpected: string[];
}

/** What a replayed earlier frame gets: DUPLICATE, or LEASE_EXPIRED once its task was fenced (§6.1, §7). */
export const REPLAYED = ['DUPLICATE', 'TS_ERR_LEASE_EXPIRED'] as const;

interface Pending {
  tally: Tally;
  /** altered: sent in place of the client's (a refusal is answered to the client with an ACK); extra: the client never sees the reply; own: the client's, as it was. */
  kind: 'altered' | 'extra' | 'own';
  /** The reply predicted (any of a list), or null: not predicted. */
  want: string | readonly string[] | null;
  task: number;
  /** A push to the model table. */
  model: boolean;
  /** For frames whose applying is remembered (replay). */
  bytes?: Uint8Array;
}

/** One tampered connection: `fromClient` what the worker sends, `fromNode` what the node answers. */
export interface TamperLink {
  fromClient(msg: Uint8Array): void;
  fromNode(msg: Uint8Array): void;
}

const blank = (): Tally => ({
  tasks: 0,
  sent: 0,
  codes: {},
  applied: 0,
  appliedTasks: [],
  skipped: 0,
  marginal: 0,
  unexpected: [],
});

/** A seeded PRNG (mulberry32): uniform draws in [0, 1). */
export function uniforms(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Rewrites a worker's pushes by the attacks of TamperOptions, and keeps the worker going: a
 * refusal of an altered frame reaches the worker as an ACK (with no receipt), so it reports the
 * task done and takes the next; the scheduler refuses that TASK_DONE (its receipts are short,
 * PROTOCOL.md §6.3) and the task runs again elsewhere. Each reply is compared with what
 * PROTOCOL.md §5–§7 predict for the frame sent.
 */
export class Tamperer {
  readonly tallies = new Map<Attack, Tally>();
  /** The client's own frames, sent as they were (its pulls, CAPs, audit pushes, honest pushes). */
  readonly own = blank();
  /** ERROR replies to frames the tamperer did not track (the client's pulls, CAPs …), by code. */
  readonly other: Record<string, number> = {};
  private readonly order = new Map<number, Attack>();
  /** Tasks a push of whose to the model table a node applied. */
  private readonly pushed = new Set<number>();

  private readonly uniform: () => number;

  constructor(private readonly o: TamperOptions) {
    this.uniform = uniforms(o.seed);
    for (const a of o.attacks) this.tallies.set(a, blank());
  }

  /** The attack on `task` (fixed at its first push seen). */
  attackOf(task: number): Attack {
    if (task >= (this.o.honestFrom ?? Number.POSITIVE_INFINITY)) return 'honest';
    let a = this.order.get(task);
    if (a === undefined) {
      a = this.o.attacks[this.order.size % this.o.attacks.length];
      this.order.set(task, a);
      this.tallies.get(a)!.tasks++;
    }
    return a;
  }

  /** Attacker frames sent, applied, and replies by code, over every attack. */
  totals(): { sent: number; applied: number; codes: Record<string, number> } {
    const codes: Record<string, number> = {};
    let sent = 0;
    let applied = 0;
    for (const t of this.tallies.values()) {
      sent += t.sent;
      applied += t.applied;
      for (const [c, n] of Object.entries(t.codes)) codes[c] = (codes[c] ?? 0) + n;
    }
    return { sent, applied, codes };
  }

  /**
   * Attacked tasks none of whose model pushes a node applied: the worker reported them done, but
   * their receipts cover no model keys, so the scheduler refuses those TASK_DONEs (§6.3).
   */
  lostTasks(): number[] {
    return [...this.order.keys()].filter((t) => !this.pushed.has(t));
  }

  /** Every reply seen, by code (the attacks' and the client's own). */
  allCodes(): Record<string, number> {
    const codes = { ...this.totals().codes };
    for (const [c, n] of Object.entries(this.own.codes)) codes[c] = (codes[c] ?? 0) + n;
    return codes;
  }

  /** A connection to one node: `toNode` sends there, `toClient` delivers to the worker. */
  link(toNode: (msg: Uint8Array) => void, toClient: (msg: Uint8Array) => void): TamperLink {
    const o = this.o;
    const cache = new Map<string, number[]>();
    const seen = new Set<number>();
    const applied: Uint8Array[] = [];
    const pending = new Map<number, Pending>();
    let nextId = 0xf000_0000; // request ids of extra frames: far above the worker's (1, 2, …)
    const send = (bytes: Uint8Array, p: Omit<Pending, 'model'>) => {
      const v = new DataView(bytes.buffer, bytes.byteOffset);
      const id = v.getUint32(4, true);
      pending.set(id, { ...p, model: v.getUint32(8, true) === o.job && v.getUint32(12, true) === o.table });
      if (p.kind !== 'own') p.tally.sent++;
      toNode(bytes);
    };
    const extra = (bytes: Uint8Array, tally: Tally, want: Pending['want'], task: number) => {
      const copy = bytes.slice();
      new DataView(copy.buffer).setUint32(4, nextId++, true);
      send(copy, { tally, kind: 'extra', want, task });
    };
    const listOf = (k: Keys): number[] | null =>
      k.kind === 'list' ? k.keys : k.kind === 'cached' ? (cache.get(`${k.n}:${k.hi}:${k.lo}`) ?? null) : null;
    return {
      fromClient: (msg) => {
        let f: Frame;
        try {
          f = decode(msg);
        } catch {
          toNode(msg);
          return;
        }
        if (f.job === o.job && f.table === o.table && f.keys.kind === 'list') {
          for (const k of f.keys.keys) seen.add(k);
          if (f.flags & FLAG.CACHE_KEYS) {
            const h = o.h64(new Uint8Array(Float64Array.from(f.keys.keys).buffer));
            cache.set(`${f.keys.keys.length}:${Number(h >> 32n)}:${Number(h & 0xffffffffn)}`, f.keys.keys);
          }
        }
        if (f.type !== T.PUSH || !f.task || f.task[1] === 0) {
          toNode(msg);
          return;
        }
        const task = f.task[1];
        const attack = f.job === o.job && f.table === o.table ? this.attackOf(task) : 'honest';
        const tally = this.tallies.get(attack);
        if (attack === 'honest' || !tally) {
          send(msg, { tally: this.own, kind: 'own', want: 'ok', task, bytes: msg });
          return;
        }
        const alter = (g: Frame, want: string | null) => send(encode(g), { tally, kind: 'altered', want, task });
        const values = floats(f.value);
        switch (attack) {
          case 'scale1e6':
          case 'flip100':
          case 'flip1':
          case 'noise':
          case 'noise-inbound':
          case 'nan': {
            const v = this.poison(attack, values);
            const want = this.predict(v, tally);
            alter({ ...f, value: floatBytes(v) }, want);
            return;
          }
          case 'outside-keys': {
            const own = listOf(f.keys);
            const mine = new Set(own ?? []);
            const foreign = [...seen]
              .filter((k) => !mine.has(k))
              .sort((a, b) => a - b)
              .slice(0, 64);
            if (!own || foreign.length === 0 || values.length !== own.length) {
              tally.skipped++;
              send(msg, { tally: this.own, kind: 'own', want: 'ok', task });
              return;
            }
            const byKey = new Map(own.map((k, i) => [k, values[i]]));
            for (const k of foreign) byKey.set(k, values[0]);
            const keys = [...byKey.keys()].sort((a, b) => a - b);
            const v = Float32Array.from(keys, (k) => byKey.get(k)!);
            alter(
              { ...f, flags: f.flags & ~FLAG.CACHE_KEYS, keys: { kind: 'list', keys }, value: floatBytes(v) },
              'TS_ERR_KEYS_OUTSIDE_TASK',
            );
            return;
          }
          case 'restamp': {
            const [w, , attempt, seq] = f.task;
            alter({ ...f, task: [w, task + o.shards, attempt, seq] }, 'TS_ERR_CAPABILITY_REQUIRED');
            return;
          }
          case 'replay': {
            send(msg, { tally: this.own, kind: 'own', want: 'ok', task, bytes: msg });
            extra(msg, tally, 'DUPLICATE', task); // behind it on the same connection: served after it
            // An earlier frame: a duplicate, or fenced when its task's TASK_DONE was refused (§6.3).
            for (const old of applied.slice(-(o.replays ?? 8))) extra(old, tally, REPLAYED, task);
            return;
          }
          case 'reseq': {
            send(msg, { tally: this.own, kind: 'own', want: 'ok', task, bytes: msg });
            const [w, , attempt, seq] = f.task;
            // A seq whose counter (low 24 bits, §7) no attempt of 2^23 frames or fewer reaches;
            // not predicted: the design does not stop it (THREAT_MODEL.md), this measures it.
            extra(encode({ ...f, task: [w, task, attempt, (seq ^ 0x0080_0000) >>> 0] }), tally, null, task);
            return;
          }
        }
      },
      fromNode: (msg) => {
        const id = msg.byteLength >= 8 ? new DataView(msg.buffer, msg.byteOffset, 8).getUint32(4, true) : 0;
        const p = id === 0 ? undefined : pending.get(id);
        if (!p) {
          if (msg[1] === T.ERROR) {
            const code = replyCode(msg);
            this.other[code] = (this.other[code] ?? 0) + 1;
          }
          toClient(msg);
          return;
        }
        pending.delete(id);
        const code = replyCode(msg);
        p.tally.codes[code] = (p.tally.codes[code] ?? 0) + 1;
        if (code === 'ok' && p.kind !== 'own') {
          p.tally.applied++;
          if (!p.tally.appliedTasks.includes(p.task)) p.tally.appliedTasks.push(p.task);
        }
        if (p.want !== null && !([] as string[]).concat(p.want).includes(code) && p.tally.unexpected.length < 20)
          p.tally.unexpected.push(`${p.kind} frame: ${code}, predicted ${p.want}`);
        if (code === 'ok' && p.model) this.pushed.add(p.task);
        if (code === 'ok' && p.bytes) applied.push(p.bytes.slice());
        if (applied.length > 64) applied.shift();
        if (p.kind === 'extra') return;
        if (p.kind === 'altered' && code.startsWith('TS_ERR_') && code !== 'TS_ERR_KEYS_NOT_CACHED') {
          toClient(ack(id)); // the worker believes its push went in, and goes on
          return;
        }
        toClient(msg);
      },
    };
  }

  /** The values an attack pushes in place of the gradient `g`. */
  private poison(attack: Attack, g: Float32Array): Float32Array {
    const b = this.o.bounds;
    switch (attack) {
      case 'scale1e6':
        return g.map((x) => x * 1e6);
      case 'flip100':
        return g.map((x) => x * -100);
      case 'flip1':
        return g.map((x) => -x);
      case 'nan': {
        const v = g.slice();
        v[Math.floor(this.uniform() * v.length)] = Number.NaN;
        return v;
      }
      default: {
        // Box-Muller normals, scaled to the norm wanted.
        const v = Float64Array.from(
          g,
          () => Math.sqrt(-2 * Math.log(1 - this.uniform())) * Math.cos(2 * Math.PI * this.uniform()),
        );
        let sq = 0;
        let top = 0;
        for (const x of v) {
          sq += x * x;
          top = Math.max(top, Math.abs(x));
        }
        const inbound = attack === 'noise-inbound';
        let scale = ((inbound ? 0.5 : 10) * (b.norm ?? 1e3)) / (Math.sqrt(sq) || 1);
        if (inbound && b.value !== undefined && top * scale > 0.5 * b.value) scale = (0.5 * b.value) / top;
        return Float32Array.from(v, (x) => x * scale);
      }
    }
  }

  /** The reply PROTOCOL.md §5 predicts for a push of these values under a valid stamp (null: too close to call). */
  private predict(v: Float32Array, tally: Tally): string | null {
    const b = this.o.bounds;
    let sq = 0;
    let top = 0;
    for (const x of v) {
      if (!Number.isFinite(x)) return 'TS_ERR_NON_FINITE';
      sq += x * x;
      top = Math.max(top, Math.abs(x));
    }
    if (b.value !== undefined && top > b.value) return 'TS_ERR_PUSH_BOUND';
    const norm = Math.sqrt(sq);
    if (b.norm !== undefined && Math.abs(norm - b.norm) <= 1e-9 * b.norm) {
      tally.marginal++;
      return null;
    }
    if (b.norm !== undefined && norm > b.norm) return 'TS_ERR_PUSH_BOUND';
    return 'ok';
  }
}
