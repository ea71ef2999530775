/**
 * RpcPeer: replies matched by request id, ERROR frames as coded errors, timeouts by one deadline
 * sweeper per peer (requests made at different times each expire; a reply in time is not
 * expired; a late reply is ignored), and everything pending failed on close.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from './errors.ts';
import { decodeObject, encodeError, encodeJson } from './protocol/control.ts';
import { decodeFrame, MsgType } from './protocol/frame.ts';
import { encodeAck, encodePull } from './protocol/kv.ts';
import { RpcPeer } from './rpc.ts';
import { type Conn, concatParts } from './transport/types.ts';

/** A connection whose far end is the test: it records what is sent and replies when told to. */
class ScriptedConn implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://scripted';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  readonly sent: Uint8Array[] = [];

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    this.sent.push(concatParts(parts));
    if (onSent) queueMicrotask(onSent);
  }

  /** Request id of the i-th message sent. */
  id(i: number): number {
    return decodeFrame(this.sent[i]).requestId;
  }

  reply(parts: Uint8Array[]): void {
    this.onmessage?.(concatParts(parts));
  }

  close(err?: TabshardError): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.(err);
  }
}

const pull = (id: number) =>
  encodePull({ requestId: id, job: 0, table: 0, clock: 0, keys: { kind: 'range', begin: 0, end: 1 } });
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof TabshardError ? err.code : String(err);
  }
};

describe('RpcPeer', () => {
  it('matches replies to requests by id and turns ERROR frames into coded errors', async () => {
    const conn = new ScriptedConn();
    const peer = new RpcPeer(conn, 0);
    const a = peer.call(pull);
    const b = peer.call(pull);
    conn.reply(encodeError(conn.id(1), new TabshardError('TS_ERR_UNKNOWN_TABLE', 'x')));
    conn.reply(encodeAck(conn.id(0), true));
    assert.equal((await a).requestId, conn.id(0));
    assert.equal(await codeOf(b), 'TS_ERR_UNKNOWN_TABLE');
  });

  it('times out a request that gets no reply with TS_ERR_TIMEOUT', async () => {
    const conn = new ScriptedConn();
    const peer = new RpcPeer(conn, 20);
    assert.equal(await codeOf(peer.call(pull)), 'TS_ERR_TIMEOUT');
    assert.equal(conn.closed, false);
  });

  it('times out requests made at different times, each after its own deadline, and not one answered in time', async () => {
    const conn = new ScriptedConn();
    let now = 0; // a fake clock decides which deadlines have passed, whenever the sweeper runs
    const peer = new RpcPeer(conn, 40, () => now);
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>) => codeOf(p).then((c) => settled.push(`${name}:${c}`));
    const first = track('first', peer.call(pull)); // deadline 40
    now = 25;
    const second = track('second', peer.call(pull)); // deadline 65
    const answered = track('answered', peer.call(pull));
    now = 50;
    await first;
    assert.deepEqual(settled, ['first:TS_ERR_TIMEOUT']);
    conn.reply(encodeAck(conn.id(2)));
    await answered;
    now = 70;
    await second;
    assert.deepEqual(settled, ['first:TS_ERR_TIMEOUT', 'answered:resolved', 'second:TS_ERR_TIMEOUT']);
    // A reply that comes after its request timed out is ignored.
    conn.reply(encodeAck(conn.id(1)));
    assert.equal(conn.closed, false);
    // The sweeper is re-armed for requests made after everything pending had settled.
    const late = peer.call(pull); // deadline 110
    now = 120;
    assert.equal(await codeOf(late), 'TS_ERR_TIMEOUT');
  });

  it('fails everything pending with the close error when the connection closes', async () => {
    const conn = new ScriptedConn();
    const peer = new RpcPeer(conn, 30_000);
    const a = peer.call(pull);
    const b = peer.call(pull);
    conn.close();
    assert.deepEqual(await Promise.all([codeOf(a), codeOf(b)]), ['TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_TRANSPORT_CLOSED']);
    assert.equal(await codeOf(peer.call(pull)), 'TS_ERR_TRANSPORT_CLOSED');
  });

  it('hands unsolicited RING frames (request id 0) to onring, never as a reply', async () => {
    const conn = new ScriptedConn();
    const peer = new RpcPeer(conn, 0);
    const rings: unknown[] = [];
    const query = peer.call((id) => encodeJson(MsgType.RING, id, {}));
    conn.reply(encodeJson(MsgType.RING, 0, { ring: { version: 2 } })); // dropped: no onring yet
    peer.onring = (f) => rings.push(decodeObject(f));
    conn.reply(encodeJson(MsgType.RING, 0, { ring: { version: 3 } }));
    assert.deepEqual(rings, [{ ring: { version: 3 } }]);
    conn.reply(encodeJson(MsgType.RING, conn.id(0), { ring: { version: 3 }, addresses: {} }));
    assert.deepEqual(
      decodeObject(await query),
      { ring: { version: 3 }, addresses: {} },
      'a RING reply is still a reply',
    );
    assert.equal(rings.length, 1);
  });

  it('passes the parts it sent to onSent', async () => {
    const conn = new ScriptedConn();
    const peer = new RpcPeer(conn, 0);
    let built: Uint8Array[] = [];
    const seen = new Promise<Uint8Array[]>((resolve) => {
      peer.request(
        (id) => {
          built = pull(id);
          return built;
        },
        () => {},
        resolve,
      );
    });
    assert.equal(await seen, built);
  });
});
