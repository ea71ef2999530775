/**
 * Test support for the scheduler (imported by its *.test.ts only): a scheduler on the seeded
 * memory network driven by a ManualClock, a recording fence, the event log, a raw session for
 * hand-made frames, a Conn that can be frozen (a hung tab), and event-loop helpers. Nothing
 * here sleeps in real time: the memory network delivers on setImmediate turns and the clock
 * moves only when a test advances it.
 */
import { ManualClock } from '../../shared/clock-source.ts';
import { TabshardError } from '../../shared/errors.ts';
import { decodeError } from '../../shared/protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from '../../shared/protocol/frame.ts';
import { MemoryNetwork, type MemoryNetworkOptions } from '../../shared/transport/memory.ts';
import type { Conn } from '../../shared/transport/types.ts';
import type { ReceiptChecker } from './receipts.ts';
import { type CapabilityIssuer, Scheduler } from './scheduler.ts';
import type { JobConfig, ResumePoint } from './types.ts';

/** Yields to the event loop `n` times (memory network deliveries run one per turn). */
export async function turns(n = 50): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Yields until `cond()` holds; fails after `max` turns, naming `what`. */
export async function until(cond: () => boolean, what: string, max = 20_000): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`not reached after ${max} turns: ${what}`);
}

/** The state of a promise without awaiting it (settles within a few turns). */
export function track<T>(p: Promise<T>): { done: boolean; value?: T; error?: unknown } {
  const s: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(s, { done: true, value }),
    (error) => Object.assign(s, { done: true, error }),
  );
  return s;
}

/** A Conn whose sends vanish once `frozen` (a tab that hung without closing its socket). */
export class FreezableConn implements Conn {
  frozen = false;
  constructor(readonly inner: Conn) {}
  get kind() {
    return this.inner.kind;
  }
  get remote() {
    return this.inner.remote;
  }
  get closed() {
    return this.inner.closed;
  }
  get onmessage() {
    return this.inner.onmessage;
  }
  set onmessage(fn) {
    this.inner.onmessage = fn;
  }
  get onclose() {
    return this.inner.onclose;
  }
  set onclose(fn) {
    this.inner.onclose = fn;
  }
  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    if (!this.frozen) this.inner.send(parts, onSent);
  }
  close(err?: TabshardError): void {
    this.inner.close(err);
  }
}

export interface Event {
  ev: string;
  t: number;
  task?: number;
  attempt?: number;
  worker?: number;
  iteration?: number;
  reason?: string;
}

export interface KitOptions {
  net?: MemoryNetworkOptions;
  /** An existing network to listen on (for tests that put server nodes on it too). */
  network?: MemoryNetwork;
  /** Replaces the default fence (which resolves at once and records the call). */
  fence?: (task: number, attempt: number) => Promise<void>;
  /** Resume from a checkpoint's progress (Scheduler's `resume`). */
  resume?: ResumePoint;
  /** Issue capabilities with each lease and session (Scheduler's `capabilities`). */
  capabilities?: CapabilityIssuer;
  /** Check TASK_DONEs' receipts (Scheduler's `receipts`). */
  receipts?: ReceiptChecker;
}

/** A scheduler listening on memory://sched, with its clock, network and records. */
export function schedKit(cfg: Partial<JobConfig> = {}, opts: KitOptions = {}) {
  const clock = new ManualClock(1_000_000);
  const net = opts.network ?? new MemoryNetwork({ seed: 7, maxDelay: 5, ...opts.net });
  const events: Event[] = [];
  const fences: Array<[number, number]> = [];
  const sched = new Scheduler(
    {
      job: 3,
      name: 'test',
      app: 'demo',
      shards: 3,
      iterations: 4,
      tau: 0,
      leaseMs: 10_000,
      heartbeatMs: 2_000,
      ...cfg,
    },
    {
      clock,
      fence:
        opts.fence ??
        (async (task, attempt) => {
          fences.push([task, attempt]);
        }),
      log: (ev) => events.push(ev as Event),
      capabilities: opts.capabilities,
      receipts: opts.receipts,
    },
  );
  if (opts.resume) sched.resumeFrom(opts.resume);
  const listener = net.listen('sched');
  listener.onconnection = (conn) => sched.serve(conn);
  return {
    clock,
    net,
    sched,
    events,
    fences,
    dial: () => net.dialer().dial('memory://sched'),
    /** Advances the clock in `step` ms steps, letting the network deliver after each. */
    async advance(ms: number, step = 100, perStep = 20): Promise<void> {
      for (let left = ms; left > 0; left -= step) {
        clock.advance(Math.min(step, left));
        await turns(perStep);
      }
    },
    of: (ev: string) => events.filter((e) => e.ev === ev),
  };
}

/** A session speaking raw frames: every message sent, every reply kept. */
export class RawSession {
  readonly replies: Frame[] = [];
  constructor(readonly conn: Conn) {
    conn.onmessage = (m) => this.replies.push(decodeFrame(m));
  }
  send(parts: Uint8Array[]): void {
    this.conn.send(parts);
  }
  /** Sends a request and waits for the reply with its id; ERROR replies reject with their code. */
  async call(build: (id: number) => Uint8Array[]): Promise<Frame> {
    const id = this.nextId++;
    this.send(build(id));
    const reply = () => this.replies.find((r) => r.requestId === id);
    await until(() => reply() !== undefined, `reply to ${id}`);
    const f = reply()!;
    if (f.type === MsgType.ERROR) throw decodeError(f);
    return f;
  }
  private nextId = 1000;
}

/** Every lease of iteration i came after every task of iterations ≤ i − τ − 1 was done (from the log). */
export function checkGate(events: Event[], shards: number, tau: number | null): void {
  const done = new Set<number>();
  for (const e of events) {
    if (e.ev === 'done') done.add(e.task!);
    if (e.ev !== 'lease' || tau === null) continue;
    const iteration = Math.floor((e.task! - 1) / shards);
    for (let t = 1; t <= (iteration - tau) * shards; t++)
      if (!done.has(t)) throw new Error(`task ${e.task} (iteration ${iteration}) leased before task ${t} was done`);
  }
}

/** The code of a rejected promise ('ok' when it resolved). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof TabshardError)) throw e;
    return e.code;
  }
}
