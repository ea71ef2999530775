/**
 * Request/response over one `Conn`: request ids, matching replies, ERROR frames turned back into
 * TabshardErrors, per-request timeouts, and failing everything pending when the connection
 * closes. Used by the client library and by the server manager.
 *
 * Timeouts cost no timer per request: every request on a peer has the same timeout, so pending
 * requests (kept in insertion order) expire oldest first, and one sweeper timer per peer, armed
 * for the oldest deadline, expires them.
 */
import { TabshardError } from './errors.ts';
import { decodeError } from './protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from './protocol/frame.ts';
import type { Conn } from './transport/types.ts';

/** Called once with the reply frame, or with the error that ended the request. */
export type ReplyFn = (err: TabshardError | null, f: Frame | null) => void;

interface Pending {
  done: ReplyFn;
  deadline: number;
  /** The reply must outlive its callback (`call`): it is decoded from a copy of the message. */
  keep: boolean;
}

type Timer = ReturnType<typeof setTimeout>;

/** Node's timers can stop holding the process open; browsers' numeric timers cannot (and need not). */
function setRef(t: Timer, on: boolean): void {
  const n = t as { ref?: () => void; unref?: () => void };
  if (on) n.ref?.();
  else n.unref?.();
}

export class RpcPeer {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sweeper: Timer | null = null;
  /** Whether the sweeper holds the process open (only while something is pending). */
  private sweeperRef = false;
  /**
   * Frames a server sends unasked (PUBLISH, eager SSP): they are not replies, so they go here,
   * whatever their request id (a PUBLISH's is its subscription id). Dropped when unset. Like a
   * `request` reply, the frame is valid only while the callback runs; `bytes` is its length on the wire.
   */
  onpublish: ((f: Frame, bytes: number) => void) | null = null;
  /**
   * RING frames with request id 0: a node's announcement of a newly installed ring (PROTOCOL.md
   * §6, RING push). Requests never have id 0, so these are never replies. Dropped when unset;
   * the frame is valid only while the callback runs.
   */
  onring: ((f: Frame) => void) | null = null;

  constructor(
    readonly conn: Conn,
    private readonly timeoutMs = 30_000,
    /** Milliseconds, monotonic (tests pass a fake clock; timers still run in real time). */
    private readonly now: () => number = () => performance.now(),
  ) {
    // Every reply is decoded and handed over before onMessage returns (a kept one from a copy).
    conn.transientMessages = true;
    conn.onmessage = (msg) => this.onMessage(msg);
    conn.onclose = (err) => this.failAll(err ?? new TabshardError('TS_ERR_TRANSPORT_CLOSED', conn.remote));
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /** Sends the message `build(requestId)` and resolves with the reply frame (the caller's to keep). */
  call(build: (requestId: number) => Uint8Array[], onSent?: (parts: Uint8Array[]) => void): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      this.request(build, (err, f) => (err ? reject(err) : resolve(f!)), onSent, true);
    });
  }

  /**
   * Callback form of `call` (the hot path: no promise, no copy): sends `build(requestId)` and
   * calls `done` exactly once, with the reply or the error (possibly before returning, when the
   * send fails at once). The reply frame is valid only while `done` runs: its values and body may
   * be views of a buffer the transport reuses (Conn.transientMessages); copy what you keep.
   * `onSent(parts)` runs when the transport no longer references the parts.
   */
  request(
    build: (requestId: number) => Uint8Array[],
    done: ReplyFn,
    onSent?: (parts: Uint8Array[]) => void,
    keep = false,
  ): void {
    if (this.conn.closed) {
      done(new TabshardError('TS_ERR_TRANSPORT_CLOSED', this.conn.remote), null);
      return;
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    let deadline = Number.POSITIVE_INFINITY;
    if (this.timeoutMs > 0) {
      deadline = this.now() + this.timeoutMs;
      if (this.sweeper === null) this.arm(this.timeoutMs);
      else if (!this.sweeperRef) {
        setRef(this.sweeper, true);
        this.sweeperRef = true;
      }
    }
    this.pending.set(id, { done, deadline, keep });
    try {
      const parts = build(id);
      this.conn.send(parts, onSent && (() => onSent(parts)));
    } catch (err) {
      this.settle(id);
      done(
        err instanceof TabshardError ? err : new TabshardError('TS_ERR_INTERNAL', String(err), { cause: err }),
        null,
      );
    }
  }

  close(): void {
    this.conn.close();
  }

  private arm(ms: number): void {
    this.sweeper = setTimeout(this.sweep, ms);
    this.sweeperRef = true;
  }

  /** Expires every pending request whose deadline has passed; re-arms for the oldest one left. */
  private readonly sweep = (): void => {
    this.sweeper = null;
    const now = this.now();
    const expired: number[] = [];
    let next = Number.POSITIVE_INFINITY;
    // Insertion order is deadline order (one timeout per peer): stop at the first one still live.
    for (const [id, p] of this.pending) {
      if (p.deadline > now) {
        next = p.deadline;
        break;
      }
      expired.push(id);
    }
    // Re-arm before calling back, so a request made from a callback finds the sweeper armed.
    if (next !== Number.POSITIVE_INFINITY) this.arm(Math.max(1, Math.ceil(next - now)));
    for (const id of expired) {
      const p = this.settle(id);
      p?.done(new TabshardError('TS_ERR_TIMEOUT', `request ${id} to ${this.conn.remote}`), null);
    }
  };

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      // The sweeper stays armed for later requests, but no longer holds the process open.
      if (this.pending.size === 0 && this.sweeper !== null && this.sweeperRef) {
        setRef(this.sweeper, false);
        this.sweeperRef = false;
      }
    }
    return p;
  }

  private onMessage(msg: Uint8Array): void {
    let f: Frame;
    try {
      // A reply whose caller keeps it (`call`) is decoded from its own copy of the bytes.
      const id = msg.byteLength >= 8 ? (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0 : 0;
      const keep = msg[1] !== MsgType.PUBLISH && this.pending.get(id)?.keep === true;
      f = decodeFrame(keep ? new Uint8Array(msg) : msg);
    } catch (err) {
      // A peer that sends garbage is not one to keep talking to.
      this.conn.close(err instanceof TabshardError ? err : new TabshardError('TS_ERR_FRAME_MALFORMED'));
      return;
    }
    if (f.type === MsgType.PUBLISH) {
      this.onpublish?.(f, msg.byteLength);
      return;
    }
    if (f.type === MsgType.RING && f.requestId === 0) {
      this.onring?.(f);
      return;
    }
    const p = this.settle(f.requestId);
    if (!p) return; // a reply to a request that timed out
    if (f.type === MsgType.ERROR) {
      let err: TabshardError;
      try {
        err = decodeError(f);
      } catch (e) {
        err = e instanceof TabshardError ? e : new TabshardError('TS_ERR_FRAME_MALFORMED');
      }
      p.done(err, null);
    } else p.done(null, f);
  }

  private failAll(err: TabshardError): void {
    if (this.sweeper !== null) clearTimeout(this.sweeper);
    this.sweeper = null;
    for (const id of [...this.pending.keys()]) this.settle(id)?.done(err, null);
  }
}
