/**
 * The scheduler session (docs/workers.md, PROTOCOL.md §6.1): the JSON bodies of HELLO, LEASE,
 * TASK, HEARTBEAT and TASK_DONE between a worker and its job's scheduler. Each `encodeX` has its
 * `parseX` beside it; parsers take the decoded frame and refuse any body out of shape with
 * TS_ERR_FRAME_MALFORMED, since both ends may be untrusted.
 */
import { TabshardError } from '../errors.ts';
import { decodeObject, encodeJson, parseHello } from './control.ts';
import { type Frame, MsgType } from './frame.ts';
import { MAX_RECEIPT_CHARS, MAX_RECEIPTS } from './receipt.ts';
import { parseTraffic, type TrafficOptions } from './values.ts';

const U32_MAX = 0xffffffff;
/** Longest `agent`/`transport`/`app` string accepted. */
export const MAX_LABEL = 200;
/** Largest `wait` a scheduler may ask for (10 min), so a bad reply cannot park a worker for ever. */
export const MAX_WAIT_MS = 600_000;
/** Longest capability token a session carries (server/auth/capability.ts: MAX_CAPABILITY_CHARS). */
export const MAX_TOKEN = 2048;

/** HELLO request of a worker to its scheduler. */
export interface SchedHello {
  /** The worker id it had before (a reconnect); kept only with `resume`, else another is assigned. */
  worker?: number;
  /** The `resume` secret of the Welcome that gave `worker`. */
  resume?: string;
  /** The browser's user agent or "node/<version>", for the console. */
  agent?: string;
  /** How the worker reaches the server nodes ("webrtc", "ws", "tcp", …), for the console. */
  transport?: string;
}

/** HELLO reply: the worker's id and the job's shape. */
export interface Welcome {
  worker: number;
  /** Shown in a later HELLO with `worker` to keep this id across a reconnect. */
  resume?: string;
  /** Leases the worker may hold and await at once (a LEASE past it: TS_ERR_LEASE_LIMIT). */
  maxLeases?: number;
  job: number;
  shards: number;
  iterations: number;
  leaseMs: number;
  heartbeatMs: number;
  app: string;
  /**
   * A read capability for the job (PROTOCOL.md §6.2): the worker presents it (CAP) on every
   * server node connection before it pulls or subscribes. Absent when the cluster enforces none.
   */
  read?: string;
}

/** A task under lease: `task = iteration × shards + shard + 1`. */
export interface TaskGrant {
  task: number;
  attempt: number;
  shard: number;
  iteration: number;
  leaseMs: number;
  /**
   * The job's slowest clock when the task was granted: iterations 0 … clock − 1 are complete.
   * `iteration − clock` is the task's staleness bound in iterations (0 under BSP, ≤ τ under
   * bounded delay).
   */
  clock: number;
  /** The consistency model in force: 0 = BSP, k = bounded delay, null = ASP. */
  tau: number | null;
  /** Eager SSP: the servers publish fresh values to subscribers each time the clock advances. */
  eager?: boolean;
  /** Staleness-aware learning rate: the worker scales its push by 1 / (1 + staleness). */
  stalenessLr?: boolean;
  /** How the task's pushes and pulls encode their values (absent: float32 both ways, not deflated). */
  traffic?: TrafficOptions;
  /** The task capability (PROTOCOL.md §6.2): presented (CAP) to each node before the task's pushes. */
  cap?: string;
  /** A renewed read capability, when the session's last one is past half its life. */
  read?: string;
}

/** TASK reply to LEASE: a task, "ask again after `wait` ms", or "no more tasks". */
export type TaskReply = TaskGrant | { wait: number } | { done: true };

/** HEARTBEAT body: the lease to extend. */
export interface TaskRef {
  task: number;
  attempt: number;
}

/** TASK_DONE body: the finished lease and what it cost. */
export interface TaskReport extends TaskRef {
  examples: number;
  computeMs: number;
  waitMs: number;
  loss?: number;
  /** The receipts the nodes gave the task's pushes (PROTOCOL.md §6.3), base64url, as they came. */
  receipts?: string[];
}

/** The task id of (iteration, shard); 0 is "no task" on the wire. */
export function taskId(iteration: number, shard: number, shards: number): number {
  return iteration * shards + shard + 1;
}

const bad = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', why);

function expectType(f: Frame, type: MsgType, name: string): Record<string, unknown> {
  if (f.type !== type) throw bad(`expected ${name}, got type 0x${f.type.toString(16)}`);
  return decodeObject(f);
}

function u32(o: Record<string, unknown>, key: string, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > U32_MAX)
    throw bad(`${key} must be an integer in [${min}, ${U32_MAX}]`);
  return v;
}

function nonNegative(o: Record<string, unknown>, key: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) throw bad(`${key} must be a number ≥ 0`);
  return v;
}

function token(o: Record<string, unknown>, key: string): { [k: string]: string } {
  const v = o[key];
  if (v === undefined) return {};
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TOKEN)
    throw bad(`${key} must be a capability string of 1 to ${MAX_TOKEN} chars`);
  return { [key]: v };
}

function label(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > MAX_LABEL) throw bad(`${key} must be a string of ≤ ${MAX_LABEL} chars`);
  return v;
}

export function encodeSchedHello(requestId: number, h: SchedHello): Uint8Array[] {
  return encodeJson(MsgType.HELLO, requestId, { role: 'worker', ...h });
}

export function parseSchedHello(f: Frame): SchedHello {
  const o = expectType(f, MsgType.HELLO, 'HELLO');
  const h = parseHello(o);
  if (h.role !== 'worker') throw bad('a scheduler session is for role "worker"');
  const out: SchedHello = {};
  if (h.worker !== undefined) out.worker = h.worker;
  Object.assign(out, token(o, 'resume'));
  const agent = label(o, 'agent');
  if (agent !== undefined) out.agent = agent;
  const transport = label(o, 'transport');
  if (transport !== undefined) out.transport = transport;
  return out;
}

export function encodeWelcome(requestId: number, w: Welcome): Uint8Array[] {
  return encodeJson(MsgType.HELLO, requestId, w, w.job);
}

export function parseWelcome(f: Frame): Welcome {
  const o = expectType(f, MsgType.HELLO, 'HELLO');
  const app = label(o, 'app');
  if (app === undefined) throw bad('app must be a string');
  return {
    worker: u32(o, 'worker'),
    job: u32(o, 'job'),
    shards: u32(o, 'shards', 1),
    iterations: u32(o, 'iterations', 1),
    leaseMs: u32(o, 'leaseMs', 1),
    heartbeatMs: u32(o, 'heartbeatMs', 1),
    app,
    ...(o.maxLeases === undefined ? {} : { maxLeases: u32(o, 'maxLeases', 1) }),
    ...token(o, 'resume'),
    ...token(o, 'read'),
  };
}

/** LEASE carries an empty object; unknown keys are ignored (room for hints such as capacity). */
export function encodeLease(requestId: number, job = 0): Uint8Array[] {
  return encodeJson(MsgType.LEASE, requestId, {}, job);
}

export function parseLease(f: Frame): void {
  expectType(f, MsgType.LEASE, 'LEASE');
}

export function encodeTask(requestId: number, r: TaskReply, job = 0): Uint8Array[] {
  return encodeJson(MsgType.TASK, requestId, r, job);
}

export function parseTask(f: Frame): TaskReply {
  const o = expectType(f, MsgType.TASK, 'TASK');
  const kinds = ['task', 'wait', 'done'].filter((k) => o[k] !== undefined);
  if (kinds.length !== 1) throw bad('TASK carries exactly one of task, wait, done');
  if (kinds[0] === 'done') {
    if (o.done !== true) throw bad('done must be true');
    return { done: true };
  }
  if (kinds[0] === 'wait') return { wait: nonNegative(o, 'wait', MAX_WAIT_MS) };
  return {
    task: u32(o, 'task', 1),
    attempt: u32(o, 'attempt'),
    shard: u32(o, 'shard'),
    iteration: u32(o, 'iteration'),
    leaseMs: u32(o, 'leaseMs', 1),
    clock: u32(o, 'clock'),
    tau: o.tau === null ? null : u32(o, 'tau'),
    ...flag(o, 'eager'),
    ...flag(o, 'stalenessLr'),
    ...traffic(o.traffic),
    ...token(o, 'cap'),
    ...token(o, 'read'),
  };
}

function traffic(v: unknown): { traffic?: TrafficOptions } {
  const t = parseTraffic(v, bad);
  return t ? { traffic: t } : {};
}

/** An optional boolean field: absent or false → omitted, true → kept, anything else malformed. */
function flag(o: Record<string, unknown>, key: 'eager' | 'stalenessLr'): { [k: string]: true } {
  const v = o[key];
  if (v === undefined || v === false) return {};
  if (v !== true) throw bad(`${key} must be a boolean`);
  return { [key]: true };
}

export function encodeHeartbeat(requestId: number, r: TaskRef, job = 0): Uint8Array[] {
  return encodeJson(MsgType.HEARTBEAT, requestId, { task: r.task, attempt: r.attempt }, job);
}

export function parseHeartbeat(f: Frame): TaskRef {
  const o = expectType(f, MsgType.HEARTBEAT, 'HEARTBEAT');
  return { task: u32(o, 'task', 1), attempt: u32(o, 'attempt') };
}

export function encodeTaskDone(requestId: number, r: TaskReport, job = 0): Uint8Array[] {
  return encodeJson(MsgType.TASK_DONE, requestId, r, job);
}

export function parseTaskDone(f: Frame): TaskReport {
  const o = expectType(f, MsgType.TASK_DONE, 'TASK_DONE');
  const r: TaskReport = {
    task: u32(o, 'task', 1),
    attempt: u32(o, 'attempt'),
    examples: nonNegative(o, 'examples'),
    computeMs: nonNegative(o, 'computeMs'),
    waitMs: nonNegative(o, 'waitMs'),
  };
  if (!Number.isInteger(r.examples)) throw bad('examples must be an integer');
  if (o.loss !== undefined) {
    if (typeof o.loss !== 'number' || !Number.isFinite(o.loss)) throw bad('loss must be a finite number');
    r.loss = o.loss;
  }
  if (o.receipts !== undefined) {
    const list = o.receipts;
    if (
      !Array.isArray(list) ||
      list.length > MAX_RECEIPTS ||
      !list.every((s) => typeof s === 'string' && s.length <= MAX_RECEIPT_CHARS)
    )
      throw bad(`receipts must be at most ${MAX_RECEIPTS} strings of at most ${MAX_RECEIPT_CHARS} characters`);
    r.receipts = list as string[];
  }
  return r;
}
