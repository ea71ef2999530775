/**
 * Eager SSP on one server node, driven frame by frame through connections played by the test
 * (node dispatch is synchronous, so no waiting): what a subscriber receives on CLOCK, limits,
 * unsubscribe and close, back-pressure, and a fuzz of malformed subscription frames.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TabshardError } from '../../shared/errors.ts';
import { decodeError, encodeJson } from '../../shared/protocol/control.ts';
import { decodeFrame, type Frame, MsgType } from '../../shared/protocol/frame.ts';
import { asPullReply, encodePull, encodePush, type KvKeys } from '../../shared/protocol/kv.ts';
import { asPublish, encodeClock, encodeSubscribe, encodeUnsubscribe } from '../../shared/protocol/subscribe.ts';
import { createRng, randomSortedKeys } from '../../shared/rng.ts';
import type { TableSpec } from '../../shared/table.ts';
import { type Conn, concatParts } from '../../shared/transport/types.ts';
import { ServerNode } from './node.ts';
import { MAX_SUBSCRIBED_KEYS, MAX_SUBSCRIPTIONS } from './subscriptions.ts';

/** A connection end played by the test: records what the node sends; `hold` keeps onSent back. */
class TestConn implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://test';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  readonly got: Frame[] = [];
  readonly held: Array<() => void> = [];
  hold = false;
  private nextId = 1;

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    if (this.closed) return;
    this.got.push(decodeFrame(concatParts(parts)));
    if (onSent) this.hold ? this.held.push(onSent) : onSent();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }

  /** Delivers `build(id)` to the node and returns the one reply it sends (publications aside). */
  ask(build: (id: number) => Uint8Array[]): Frame {
    const id = this.nextId++;
    const before = this.got.length;
    this.onmessage!(concatParts(build(id)));
    const replies = this.got.slice(before).filter((f) => f.type !== MsgType.PUBLISH);
    assert.equal(replies.length, 1, 'exactly one reply');
    assert.equal(replies[0].requestId, id);
    return replies[0];
  }

  /** The reply's error code, or 'ok'. */
  code(build: (id: number) => Uint8Array[]): string {
    const f = this.ask(build);
    return f.type === MsgType.ERROR ? decodeError(f).code : 'ok';
  }

  publications(): ReturnType<typeof asPublish>[] {
    return this.got.filter((f) => f.type === MsgType.PUBLISH).map(asPublish);
  }
}

const table = (id: number, kind: 'dense' | 'sparse', keySpace: number, valueLength = 1): TableSpec => ({
  job: 1,
  id,
  name: `t${id}`,
  kind,
  keySpace,
  valueLength,
  updater: 'sum',
  params: {},
  init: { kind: 'constant', value: 0.5 },
});

function setup(adminToken?: string) {
  const node = new ServerNode('n1', { adminToken });
  node.defineTable(table(1, 'sparse', 2 ** 40, 2));
  node.defineTable(table(2, 'dense', 1 << 24));
  const conn = () => {
    const c = new TestConn();
    node.serve(c);
    return c;
  };
  return { node, conn, admin: conn() };
}

const list = (...keys: number[]): KvKeys => ({ kind: 'list', keys: Float64Array.from(keys) });
const sub = (c: TestConn, subscription: number, tableId: number, keys: KvKeys) =>
  c.code((requestId) => encodeSubscribe({ requestId, job: 1, table: tableId, subscription, keys }));
const push = (c: TestConn, tableId: number, keys: KvKeys, values: number[]) =>
  c.code((requestId) =>
    encodePush({ requestId, job: 1, table: tableId, clock: 0, task: null, keys, values: Float32Array.from(values) }),
  );
const clock = (c: TestConn, job: number, at: number) => c.code((id) => encodeClock(id, job, at));

describe('server node: subscriptions and publication (eager SSP)', () => {
  it('publishes exactly the current values of each subscription, in its key order, with the clock', () => {
    const { node, conn, admin } = setup();
    const a = conn();
    const b = conn();
    assert.equal(sub(a, 7, 1, list(3, 10, 2 ** 39)), 'ok');
    assert.equal(sub(b, 7, 2, { kind: 'range', begin: 100, end: 104 }), 'ok', 'ids are per connection');
    assert.equal(push(a, 1, list(10, 2 ** 39), [1, 2, 3, 4]), 'ok');
    assert.equal(push(b, 2, { kind: 'range', begin: 101, end: 103 }, [5, 6]), 'ok');
    assert.deepEqual(a.publications(), [], 'nothing before a clock');
    assert.equal(clock(admin, 1, 3), 'ok');
    const [pa] = a.publications();
    assert.deepEqual(
      { ...pa, values: Array.from(pa.values) },
      {
        job: 1,
        table: 1,
        subscription: 7,
        clock: 3,
        values: [0.5, 0.5, 1.5, 2.5, 3.5, 4.5], // init 0.5 plus the pushes
      },
    );
    const [pb] = b.publications();
    assert.deepEqual(Array.from(pb.values), [0.5, 5.5, 6.5, 0.5]);
    assert.equal(pb.clock, 3);
    assert.equal(push(a, 1, list(3), [1, 1]), 'ok');
    assert.equal(clock(admin, 1, 4), 'ok');
    assert.deepEqual(Array.from(a.publications()[1].values.subarray(0, 2)), [1.5, 1.5]);
    assert.equal(a.publications()[1].clock, 4);
    const s = node.stats();
    assert.equal(s.publish.subscriptions, 2);
    assert.equal(s.publish.publishedFrames, 4);
    assert.equal(s.publish.publishedBytes, 2 * (32 + 6 * 4) + 2 * (32 + 4 * 4));
    assert.equal(s.tables.find((t) => t.id === 1)!.pulls, 0, 'publications are not counted as pulls');
  });

  it('with CHANGED: the first publication in full, then only the positions whose values changed (in full when most did)', () => {
    const { node, conn, admin } = setup();
    const a = conn();
    const keys = list(1, 2, 3, 4, 5, 6, 7, 8);
    assert.equal(
      a.code((requestId) => encodeSubscribe({ requestId, job: 1, table: 1, subscription: 3, keys, changed: true })),
      'ok',
    );
    const held = new Float32Array(16); // what the subscriber holds, rebuilt from its publications
    const apply = () => {
      const p = a.publications().at(-1)!;
      if (!p.positions) held.set(p.values);
      else
        for (let i = 0; i < p.positions.length; i++) held.set(p.values.subarray(2 * i, 2 * i + 2), 2 * p.positions[i]);
      return p;
    };
    const current = () =>
      Array.from(asPullReply(a.ask((requestId) => encodePull({ requestId, job: 1, table: 1, clock: 0, keys }))));
    assert.equal(clock(admin, 1, 1), 'ok');
    assert.equal(apply().positions, undefined, 'the first publication is full');
    assert.equal(push(a, 1, list(2, 7), [1, 0, 0, 2]), 'ok');
    assert.equal(clock(admin, 1, 2), 'ok');
    assert.deepEqual(Array.from(apply().positions!), [1, 6], 'keys 2 and 7 changed');
    assert.deepEqual(Array.from(held), current());
    assert.equal(clock(admin, 1, 3), 'ok');
    assert.deepEqual(Array.from(apply().positions!), [], 'nothing changed: the clock alone');
    assert.equal(push(a, 1, list(1, 2, 3, 4, 5, 6, 7), new Array(14).fill(1)), 'ok');
    assert.equal(clock(admin, 1, 4), 'ok');
    assert.equal(apply().positions, undefined, '7 of 8 changed: in full');
    assert.deepEqual(Array.from(held), current());
    assert.equal(push(a, 1, list(1, 8), [0.25, 0, 0, 0.5]), 'ok'); // one float of each key
    assert.equal(clock(admin, 1, 5), 'ok');
    assert.deepEqual(Array.from(apply().positions!), [0, 7]);
    assert.deepEqual(Array.from(held), current());
    assert.equal(node.stats().publish.changedFrames, 3);
    // Without CHANGED a subscription is published in full every time.
    const b = conn();
    assert.equal(sub(b, 3, 1, keys), 'ok');
    assert.equal(clock(admin, 1, 6), 'ok');
    assert.equal(clock(admin, 1, 7), 'ok');
    assert.ok(b.publications().every((p) => p.positions === undefined && p.values.length === 16));
  });

  it('publishes another job nothing, and a clock without subscribers is a no-op', () => {
    const { node, conn, admin } = setup();
    const a = conn();
    assert.equal(clock(admin, 1, 0), 'ok');
    assert.equal(clock(admin, 99, 5), 'ok');
    assert.equal(node.stats().publish.publishedFrames, 0);
    assert.equal(sub(a, 1, 1, list(1)), 'ok');
    assert.equal(a.publications().length, 1, 'a late subscriber gets the job’s last clock at once');
    assert.equal(a.publications()[0].clock, 0);
    assert.equal(clock(admin, 99, 6), 'ok');
    assert.equal(a.publications().length, 1);
  });

  it('sends the ACK of a SUBSCRIBE before its catch-up publication', () => {
    const { conn, admin } = setup();
    clock(admin, 1, 2);
    const a = conn();
    sub(a, 1, 1, list(1));
    assert.deepEqual(
      a.got.map((f) => f.type),
      [MsgType.ACK, MsgType.PUBLISH],
    );
  });

  it('drops a subscription on UNSUBSCRIBE (unknown ids ACK too) and all of a connection’s on close', () => {
    const { node, conn, admin } = setup();
    const a = conn();
    const b = conn();
    sub(a, 1, 1, list(1));
    sub(a, 2, 1, list(2));
    sub(b, 1, 1, list(1));
    assert.equal(
      a.code((requestId) => encodeUnsubscribe({ requestId, job: 1, table: 1, subscription: 1 })),
      'ok',
    );
    assert.equal(
      a.code((requestId) => encodeUnsubscribe({ requestId, job: 1, table: 1, subscription: 99 })),
      'ok',
    );
    clock(admin, 1, 1);
    assert.deepEqual(
      a.publications().map((p) => p.subscription),
      [2],
    );
    assert.equal(b.publications().length, 1);
    b.close();
    assert.equal(node.stats().publish.subscriptions, 1);
    a.close();
    assert.equal(node.stats().publish.subscriptions, 0);
    const frames = node.stats().publish.publishedFrames;
    clock(admin, 1, 2);
    assert.equal(node.stats().publish.publishedFrames, frames);
  });

  it('replaces a subscription re-subscribed under the same id', () => {
    const { node, conn, admin } = setup();
    const a = conn();
    sub(a, 5, 1, list(1));
    sub(a, 5, 1, list(2, 3));
    assert.equal(node.stats().publish.subscriptions, 1);
    clock(admin, 1, 1);
    assert.equal(a.publications().length, 1);
    assert.equal(a.publications()[0].values.length, 4);
  });

  it('refuses subscriptions past the limits with stable codes, and bad ones like pulls', () => {
    const { node, conn } = setup();
    const a = conn();
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) assert.equal(sub(a, i, 1, list(i)), 'ok');
    assert.equal(sub(a, 1000, 1, list(1)), 'TS_ERR_SUBSCRIPTION_LIMIT');
    assert.equal(sub(a, 3, 1, list(3, 4)), 'ok', 'replacing one is not one more');
    assert.equal(sub(conn(), 0, 1, list(1)), 'ok', 'the limit is per connection');
    const b = conn();
    assert.equal(sub(b, 1, 2, { kind: 'range', begin: 0, end: MAX_SUBSCRIBED_KEYS + 1 }), 'TS_ERR_SUBSCRIPTION_LIMIT');
    assert.equal(sub(b, 1, 2, { kind: 'range', begin: 0, end: MAX_SUBSCRIBED_KEYS / 2 }), 'ok');
    assert.equal(
      sub(b, 2, 2, { kind: 'range', begin: 0, end: MAX_SUBSCRIBED_KEYS / 2 + 1 }),
      'TS_ERR_SUBSCRIPTION_LIMIT',
    );
    // The same checks (and codes) as a PULL of the same keys.
    for (const [t, keys, want] of [
      [9, list(1), 'TS_ERR_UNKNOWN_TABLE'],
      [1, list(2 ** 40), 'TS_ERR_KEY_OUT_OF_RANGE'],
      [2, { kind: 'range', begin: 0, end: 2 ** 26 }, 'TS_ERR_MESSAGE_TOO_LARGE'],
    ] as const) {
      assert.equal(sub(b, 50, t, keys), want);
      assert.equal(
        b.code((requestId) => encodePull({ requestId, job: 1, table: t, clock: 0, keys })),
        want,
      );
    }
    assert.equal(node.stats().publish.subscriptions, MAX_SUBSCRIPTIONS + 2);
  });

  it('takes CLOCK only from an admin connection when the node has a token', () => {
    const { conn, admin } = setup('secret');
    assert.equal(clock(admin, 1, 1), 'TS_ERR_FORBIDDEN');
    assert.equal(
      admin.code((id) => encodeJson(MsgType.HELLO, id, { role: 'admin', token: 'secret' })),
      'ok',
    );
    assert.equal(clock(admin, 1, 1), 'ok');
    assert.equal(
      admin.code((id) => encodeJson(MsgType.CLOCK, id, { clock: -3 }, 1)),
      'TS_ERR_FRAME_MALFORMED',
    );
    assert.equal(clock(conn(), 1, 2), 'TS_ERR_FORBIDDEN');
  });

  it('keeps one publication per subscription in the transport and sends the newest clock when it drains', () => {
    const { conn, admin } = setup();
    const a = conn();
    sub(a, 1, 1, list(1));
    a.hold = true;
    clock(admin, 1, 1);
    push(a, 1, list(1), [1, 1]);
    clock(admin, 1, 2);
    clock(admin, 1, 3);
    assert.deepEqual(
      a.publications().map((p) => p.clock),
      [1],
      'later clocks wait for the first to be sent',
    );
    a.held.shift()!();
    assert.deepEqual(
      a.publications().map((p) => p.clock),
      [1, 3],
      'one publication for both, with the newest clock',
    );
    assert.deepEqual(Array.from(a.publications()[1].values), [1.5, 1.5], 'and the values read when it is sent');
    a.held.shift()!();
    assert.equal(a.publications().length, 2);
  });

  it('answers every one of 3,000 random and mutated subscription frames exactly once, never TS_ERR_INTERNAL', () => {
    const rng = createRng(314);
    const { node, conn, admin } = setup();
    const a = conn();
    const valid = (id: number): Uint8Array => {
      const keys: KvKeys =
        rng.next() < 0.5
          ? { kind: 'range', begin: rng.int(100), end: 100 + rng.int(100) }
          : { kind: 'list', keys: randomSortedKeys(rng, rng.int(20), 2 ** 40) };
      const m = { requestId: id, job: 1, table: 1 + rng.int(2), subscription: rng.int(80) };
      const pick = rng.int(4);
      if (pick === 0) return concatParts(encodeUnsubscribe(m));
      if (pick === 1) return concatParts(encodeClock(id, 1, rng.int(100)));
      return concatParts(encodeSubscribe({ ...m, keys }));
    };
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      const id = 1 + i;
      let m = valid(id);
      if (rng.next() < 0.7) {
        m = m.slice();
        for (let k = 1 + rng.int(3); k > 0; k--) m[8 + rng.int(m.length - 8)] = rng.int(256);
        if (rng.next() < 0.2) m = m.subarray(0, 8 + rng.int(m.length - 7));
      }
      const before = a.got.length;
      a.onmessage!(m);
      const replies = a.got.slice(before).filter((f) => f.type !== MsgType.PUBLISH);
      assert.equal(replies.length, 1, `message ${i}`);
      assert.equal(replies[0].requestId, id);
      if (replies[0].type === MsgType.ERROR) assert.notEqual(decodeError(replies[0]).code, 'TS_ERR_INTERNAL');
      else ok++;
    }
    assert.ok(ok > 300, `some stay valid (${ok})`);
    assert.ok(node.stats().publish.subscriptions <= MAX_SUBSCRIPTIONS);
    assert.equal(
      sub(a, 1000, 1, list(1)),
      node.stats().publish.subscriptions < MAX_SUBSCRIPTIONS ? 'ok' : 'TS_ERR_SUBSCRIPTION_LIMIT',
    );
    a.close();
    assert.equal(node.stats().publish.subscriptions, 0);
    assert.equal(clock(admin, 1, 1), 'ok');
  });
});
