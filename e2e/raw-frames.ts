/**
 * A minimal client of the wire protocol written from PROTOCOL.md alone (§2.1 TCP framing, §2.5
 * relays, §3 frames, §4 types), as an outsider would write one: it builds frames byte by byte and
 * reads ERROR replies. e2e tests use it to play a hostile client; nothing here comes from the
 * project's own code.
 */
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

/** PROTOCOL.md §4. */
export const T = {
  ERROR: 0x00,
  HELLO: 0x01,
  RING: 0x02,
  TABLE: 0x03,
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

/** A WebSocket relay (`ws://…/relay/<n>/data`, §2.5): one frame per binary message. */
export async function relay(url: string): Promise<RawConn> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
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

/** The error code of a reply ('ok' when it is not an ERROR). */
export function codeOf(f: RawFrame): string {
  return f.type === T.ERROR ? String(json(f).code) : 'ok';
}
