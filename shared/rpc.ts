/**
 * Request/response over one `Conn`: request ids, matching replies, ERROR frames turned back into
 * TabshardErrors, per-request timeouts, and failing everything pending when the connection
 * closes. Used by the client library and by the server manager.
 */
import { TabshardError } from './errors.ts';
import { decodeError } from './protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from './protocol/frame.ts';
import type { Conn } from './transport/types.ts';

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: TabshardError) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

export class RpcPeer {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    readonly conn: Conn,
    private readonly timeoutMs = 30_000,
  ) {
    conn.onmessage = (msg) => this.onMessage(msg);
    conn.onclose = (err) => this.failAll(err ?? new TabshardError('TS_ERR_TRANSPORT_CLOSED', conn.remote));
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /** Sends the message `build(requestId)` and resolves with the reply frame. */
  call(build: (requestId: number) => Uint8Array[], onSent?: () => void): Promise<Frame> {
    if (this.conn.closed) return Promise.reject(new TabshardError('TS_ERR_TRANSPORT_CLOSED', this.conn.remote));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: null };
      if (this.timeoutMs > 0)
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new TabshardError('TS_ERR_TIMEOUT', `request ${id} to ${this.conn.remote}`));
        }, this.timeoutMs);
      this.pending.set(id, p);
      try {
        this.conn.send(build(id), onSent);
      } catch (err) {
        this.settle(id);
        reject(err);
      }
    });
  }

  close(): void {
    this.conn.close();
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
    }
    return p;
  }

  private onMessage(msg: Uint8Array): void {
    let f: Frame;
    try {
      f = decodeFrame(msg);
    } catch (err) {
      // A peer that sends garbage is not one to keep talking to.
      this.conn.close(err instanceof TabshardError ? err : new TabshardError('TS_ERR_FRAME_MALFORMED'));
      return;
    }
    const p = this.settle(f.requestId);
    if (!p) return; // a reply to a request that timed out
    if (f.type === MsgType.ERROR) {
      try {
        p.reject(decodeError(f));
      } catch (err) {
        p.reject(err instanceof TabshardError ? err : new TabshardError('TS_ERR_FRAME_MALFORMED'));
      }
    } else p.resolve(f);
  }

  private failAll(err: TabshardError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }
}
