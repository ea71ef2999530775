/**
 * One worker's scheduler session over a Conn: decodes each frame, hands the four requests a
 * scheduler serves (HELLO, LEASE, HEARTBEAT, TASK_DONE) to its host and sends the replies. As
 * in the server node, anything wrong with one frame is answered with a coded ERROR and the
 * session keeps serving; a frame type the scheduler does not serve gets TS_ERR_FRAME_TYPE.
 */
import { TabshardError, toTabshardError } from '../../shared/errors.ts';
import { encodeError } from '../../shared/protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from '../../shared/protocol/frame.ts';
import { encodeAck } from '../../shared/protocol/kv.ts';
import {
  encodeWelcome,
  parseHeartbeat,
  parseLease,
  parseSchedHello,
  parseTaskDone,
  type SchedHello,
  type TaskRef,
  type TaskReport,
  type Welcome,
} from '../../shared/protocol/sched.ts';
import type { Conn } from '../../shared/transport/types.ts';

/** What a session needs from its scheduler; each call may throw a TabshardError. */
export interface SessionHost {
  hello(s: Session, h: SchedHello): Welcome;
  /** Registers a LEASE; the host replies (now or later) through `s.reply`. */
  lease(s: Session, requestId: number): void;
  heartbeat(s: Session, r: TaskRef): void;
  /** Returns true when this TASK_DONE repeats one already accepted. */
  taskDone(s: Session, r: TaskReport): boolean;
  closed(s: Session): void;
}

export class Session {
  /** The worker id HELLO gave this session; null before HELLO. */
  worker: number | null = null;
  /** Frames answered with an ERROR. */
  errors = 0;

  constructor(
    readonly conn: Conn,
    private readonly host: SessionHost,
  ) {
    conn.onmessage = (msg) => this.onMessage(msg);
    conn.onclose = () => host.closed(this);
  }

  reply(parts: Uint8Array[]): void {
    this.conn.send(parts);
  }

  close(): void {
    this.conn.close();
  }

  /** The worker id, or TS_ERR_INVALID_ARGUMENT when the session has not said HELLO yet. */
  requireWorker(): number {
    if (this.worker === null) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'say HELLO first');
    return this.worker;
  }

  private onMessage(msg: Uint8Array): void {
    // The request id sits at bytes 4-7 of any frame long enough to have one.
    let requestId = msg.byteLength >= 8 ? new DataView(msg.buffer, msg.byteOffset, 8).getUint32(4, true) : 0;
    try {
      const f = decodeFrame(msg);
      requestId = f.requestId;
      this.dispatch(f);
    } catch (err) {
      this.errors++;
      this.reply(encodeError(requestId, toTabshardError(err)));
    }
  }

  private dispatch(f: Frame): void {
    switch (f.type) {
      case MsgType.HELLO: {
        const h = parseSchedHello(f);
        if (this.worker !== null) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'HELLO twice on one session');
        this.reply(encodeWelcome(f.requestId, this.host.hello(this, h)));
        return;
      }
      case MsgType.LEASE:
        parseLease(f);
        this.requireWorker();
        this.host.lease(this, f.requestId);
        return;
      case MsgType.HEARTBEAT: {
        const r = parseHeartbeat(f);
        this.requireWorker();
        this.host.heartbeat(this, r);
        this.reply(encodeAck(f.requestId));
        return;
      }
      case MsgType.TASK_DONE: {
        const r = parseTaskDone(f);
        this.requireWorker();
        const duplicate = this.host.taskDone(this, r);
        this.reply(encodeAck(f.requestId, duplicate));
        return;
      }
      default:
        throw new TabshardError('TS_ERR_FRAME_TYPE', `type 0x${f.type.toString(16)} is not served by a scheduler`);
    }
  }
}
