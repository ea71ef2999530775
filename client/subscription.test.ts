/**
 * Eager SSP end to end: workers subscribe to keys sliced over three server nodes (in-memory
 * network and TCP), the manager publishes clocks, and `ready(c)` gives the values a fresh pull
 * gives; close, limits and a dropped connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_SUBSCRIPTIONS } from '../server/node/subscriptions.ts';
import { tableSpec, testCluster } from '../server/node/testkit.ts';
import { codeOf } from '../server/scheduler/testkit.ts';
import type { TabshardError } from '../shared/errors.ts';
import { decodeFrame, MsgType } from '../shared/protocol/frame.ts';
import { encodeAck, encodePullReply } from '../shared/protocol/kv.ts';
import { encodePublish } from '../shared/protocol/subscribe.ts';
import { Ring } from '../shared/ring.ts';
import { createRng, randomSortedKeys } from '../shared/rng.ts';
import type { TableSpec } from '../shared/table.ts';
import { MemoryNetwork } from '../shared/transport/memory.ts';
import { type Conn, concatParts } from '../shared/transport/types.ts';
import { Worker } from './worker.ts';

const spec = (id: number, name: string, kind: 'dense' | 'sparse', keySpace: number, valueLength = 1): TableSpec => ({
  ...tableSpec(id, name, kind, keySpace, valueLength),
  init: { kind: 'uniform', scale: 1, seed: 3 },
});
/** Large enough to be sliced over the nodes (K·d above the ring's small-table size). */
const D = 1 << 18;
const TABLES = [spec(1, 'dense', 'dense', D), spec(2, 'emb', 'sparse', 2 ** 40, 4)];

for (const transport of ['memory', 'tcp'] as const) {
  describe(`subscriptions over three nodes (${transport})`, () => {
    let c: Awaited<ReturnType<typeof testCluster>>;
    let w: Worker;
    let net: MemoryNetwork | undefined;
    before(async () => {
      net = transport === 'memory' ? new MemoryNetwork({ seed: 5, maxDelay: 4 }) : undefined;
      c = await testCluster(TABLES, { net });
      w = await Worker.connect({ seed: c.seed, dialers: { [transport]: c.dialer }, workerId: 2 });
    });
    after(async () => {
      w.close();
      await c.close();
    });

    it('resolves ready(c) with the values a fresh pull gives, after a publish at clock c', async () => {
      const rng = createRng(9);
      const emb = w.table('emb');
      const dense = w.table('dense');
      const keys = randomSortedKeys(rng, 3000, 2 ** 40);
      const range = { begin: 100, end: 60_000 };
      const owners = (ks: Float64Array, id: number, keySpace: number, valueLength: number) =>
        new Set(w.currentRing.sliceKeys({ id, keySpace, valueLength }, ks).map((s) => s.owner)).size;
      assert.equal(owners(keys, 2, 2 ** 40, 4), 3, 'the keys are sliced over all three nodes');
      assert.equal(
        new Set(w.currentRing.sliceRange({ id: 1, keySpace: D, valueLength: 1 }, 100, 60_000).map((s) => s.owner)).size,
        3,
      );
      const s1 = emb.subscribe(keys);
      const s2 = dense.subscribe(range);
      assert.equal(s1.clock, -1);
      assert.equal(s1.values(0), null);
      for (let clock = 0; clock < 3; clock++) {
        await w.wait(
          emb.push(
            keys,
            Float32Array.from({ length: keys.length * 4 }, () => rng.int(9)),
          ),
        );
        await w.wait(
          dense.push(
            range,
            Float32Array.from({ length: range.end - range.begin }, () => rng.int(9)),
          ),
        );
        const ready = s1.ready(clock);
        await c.mgr.publish(0, clock);
        const got = await ready;
        assert.equal(s1.clock, clock);
        assert.deepEqual(got, await w.wait(emb.pull(keys)), `emb at clock ${clock}`);
        assert.deepEqual(await s2.ready(clock), await w.wait(dense.pull(range)), `dense at clock ${clock}`);
        assert.equal(s1.values(clock), got, 'values() is the array ready() resolved with');
        assert.equal(s1.values(clock + 1), null);
      }
      // Some keys change: the nodes publish those positions only (flag CHANGED), and the values in
      // hand, spread over several runs of each node's slice, still equal a fresh pull.
      const changed0 = c.nodes.reduce((n, x) => n + x.stats().publish.changedFrames, 0);
      for (let clock = 3; clock < 5; clock++) {
        const some = keys.filter((_, i) => i % 10 === clock);
        await w.wait(
          emb.push(
            some,
            Float32Array.from({ length: some.length * 4 }, () => 1 + rng.int(9)),
          ),
        );
        await w.wait(dense.push({ begin: 5000 + clock, end: 9000 }, new Float32Array(4000 - clock).fill(2)));
        const ready = s1.ready(clock);
        await c.mgr.publish(0, clock);
        assert.deepEqual(await ready, await w.wait(emb.pull(keys)), `emb at clock ${clock}`);
        assert.deepEqual(await s2.ready(clock), await w.wait(dense.pull(range)), `dense at clock ${clock}`);
      }
      const changed = c.nodes.reduce((n, x) => n + x.stats().publish.changedFrames, 0) - changed0;
      assert.ok(changed >= 6, `publications of changes only: ${changed}`);
      s1.close();
      s2.close();
    });

    it('resolves at once for a subscriber that comes after the publish (the node’s last clock)', async () => {
      await c.mgr.publish(0, 7);
      const s = w.table('dense').subscribe({ begin: 0, end: D });
      assert.deepEqual(await s.ready(7), await w.wait(w.table('dense').pull({ begin: 0, end: D })));
      assert.equal(s.clock, 7);
      s.close();
    });

    it('counts bytes pulled and published', async () => {
      const keys = Float64Array.of(1, 2, 3);
      const s = w.table('dense').subscribe(keys);
      await s.ready(7);
      const b0 = { ...w.bytes };
      await w.wait(w.table('dense').pull(keys));
      const ready = s.ready(8);
      await c.mgr.publish(0, 8);
      await ready;
      const slices = w.currentRing.sliceKeys({ id: 1, keySpace: D, valueLength: 1 }, keys).length;
      assert.equal(w.bytes.pulled - b0.pulled, 32 * slices + 12);
      // Nothing changed since the catch-up publication: the clock alone (flag CHANGED, no positions).
      assert.equal(w.bytes.published - b0.published, 32, 'one node owns all three keys');
      assert.ok(w.bytes.requested > b0.requested);
      // One key changes: its position (DELTA32) and its value.
      await w.wait(w.table('dense').push(Float64Array.of(2), Float32Array.of(1.5)));
      const b1 = w.bytes.published;
      const next = s.ready(9);
      await c.mgr.publish(0, 9);
      assert.deepEqual(await next, await w.wait(w.table('dense').pull(keys)));
      assert.equal(w.bytes.published - b1, 32 + 8 + 4, 'a one-position list (8 bytes) and one value');
      s.close();
    });

    it('publishes F16, deflated values to a subscription that asked (SUBSCRIBE flags HALF, COMPRESS)', async () => {
      const dense = w.table('dense');
      const range = { begin: 0, end: 60_000 };
      await w.wait(
        dense.push(
          range,
          Float32Array.from({ length: 60_000 }, (_, i) => (i % 3 === 0 ? 0.25 : 0)),
        ),
      );
      const exact = (await w.wait(dense.pull(range)))!;
      const packed = dense.subscribe(range, { half: true, compress: true });
      try {
        await packed.ready(8); // the catch-up publication of the last clock
        const p0 = w.bytes.published;
        const ready = packed.ready(9);
        await c.mgr.publish(0, 9);
        const half = await ready;
        const bytes = w.bytes.published - p0;
        // The table starts uniform random: halves of random values, which deflate shrinks a little.
        assert.ok(bytes < 60_000 * 2, `${bytes} B published for 60,000 values (F32: 240,000)`);
        for (let i = 0; i < exact.length; i++) assert.ok(Math.abs(half[i] - exact[i]) <= Math.abs(exact[i]) / 1024);
      } finally {
        packed.close();
      }
    });

    it('resolves a subscription to no keys at once', async () => {
      const s = w.table('emb').subscribe(new Float64Array(0));
      assert.equal(s.clock, Number.POSITIVE_INFINITY);
      assert.equal((await s.ready(1e6)).length, 0);
      s.close();
    });

    it('closes a subscription: ready rejects and the nodes drop it', async () => {
      const s = w.table('emb').subscribe({ begin: 0, end: 50 });
      const pending = s.ready(1000);
      s.close();
      assert.equal(await codeOf(pending), 'TS_ERR_TRANSPORT_CLOSED');
      assert.equal(await codeOf(s.ready(0)), 'TS_ERR_TRANSPORT_CLOSED');
      // A pull over every node is answered after each has handled the UNSUBSCRIBE (one connection each).
      await w.wait(w.table('dense').pull({ begin: 0, end: D }));
      assert.deepEqual(
        c.nodes.map((n) => n.stats().publish.subscriptions),
        [0, 0, 0],
      );
    });

    it('rejects ready with TS_ERR_SUBSCRIPTION_LIMIT past the per-connection limit', async () => {
      const node = w.currentRing.owner({ id: 1, keySpace: D, valueLength: 1 }, 5);
      const subs = Array.from({ length: MAX_SUBSCRIPTIONS }, () => w.table('dense').subscribe(Float64Array.of(5)));
      const extra = w.table('dense').subscribe(Float64Array.of(5));
      assert.equal(await codeOf(extra.ready(0)), 'TS_ERR_SUBSCRIPTION_LIMIT');
      for (const s of subs) assert.ok((await s.ready(0)) instanceof Float32Array);
      for (const s of subs) s.close();
      await w.wait(w.table('dense').pull({ begin: 0, end: D }));
      assert.equal(c.nodes.find((n) => n.id === node)!.stats().publish.subscriptions, 0);
    });

    if (transport === 'memory')
      it('subscribes again over a new connection after one was dropped', async () => {
        const keys = { begin: 0, end: D };
        const s = w.table('dense').subscribe(keys);
        await s.ready(8);
        const nodeEnds = [...net!.conns].filter((conn) => conn.remote === 'memory://dialer'); // nodes' ends
        assert.ok(nodeEnds.length >= 3);
        for (const conn of nodeEnds) net!.drop(conn);
        assert.deepEqual(
          c.nodes.map((n) => n.stats().publish.subscriptions),
          [0, 0, 0],
          'the nodes dropped the subscriptions with the connections',
        );
        await w.wait(w.table('dense').push(keys, new Float32Array(D).fill(1)));
        const ready = s.ready(9);
        await c.mgr.publish(0, 9);
        assert.deepEqual(await ready, await w.wait(w.table('dense').pull(keys)));
        assert.deepEqual(
          c.nodes.map((n) => n.stats().publish.subscriptions),
          [1, 1, 1],
        );
        s.close();
      });
  });
}

/** A node played by the test: ACKs SUBSCRIBEs, holds PULLs unanswered, and sends what the test tells it to. */
class PlayedNode implements Conn {
  readonly kind = 'memory' as const;
  readonly remote = 'memory://n1';
  closed = false;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  readonly subscriptions: number[] = [];
  readonly pulls: number[] = [];

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    const f = decodeFrame(concatParts(parts));
    onSent?.();
    if (f.type === MsgType.SUBSCRIBE) {
      this.subscriptions.push(new DataView(f.body!.buffer, f.body!.byteOffset).getUint32(0, true));
      this.deliver(encodeAck(f.requestId));
    } else if (f.type === MsgType.PULL) this.pulls.push(f.requestId);
  }

  deliver(parts: Uint8Array[]): void {
    queueMicrotask(() => this.onmessage?.(concatParts(parts)));
  }

  close(): void {
    this.closed = true;
  }
}

describe('a worker receiving PUBLISH frames', () => {
  it('takes only well-formed publications of its own subscriptions, and never as a reply', async () => {
    const node = new PlayedNode();
    const table = { ...tableSpec(1, 'w', 'sparse', 2 ** 40, 2), job: 4 };
    const w = await Worker.connect({
      seed: async () => ({
        ring: new Ring(['n1']).toJSON(),
        addresses: { n1: { memory: 'memory://n1' } },
        tables: [table],
      }),
      dialers: { memory: { kind: 'memory', dial: async () => node } },
      job: 4,
    });
    const t = w.table('w');
    const s = t.subscribe(Float64Array.of(3, 9));
    const pull = w.wait(t.pull(Float64Array.of(3)));
    await new Promise((r) => setImmediate(r));
    const [id] = node.subscriptions;
    assert.equal(node.pulls.length, 1);
    const publish = (
      m: { job?: number; table?: number; subscription?: number; clock: number; positions?: Float64Array },
      values: number[],
    ) => node.deliver(encodePublish({ job: 4, table: 1, subscription: id, ...m }, [Float32Array.from(values)]));
    publish({ clock: 1, positions: Float64Array.of(0) }, [1, 2]); // what changed, before any full publication
    publish({ clock: 1, subscription: id + 1 }, [1, 2, 3, 4]); // no such subscription
    publish({ clock: 1, table: 2 }, [1, 2, 3, 4]); // another table
    publish({ clock: 1, job: 5 }, [1, 2, 3, 4]); // another job
    publish({ clock: 1 }, [1, 2, 3]); // wrong length
    publish({ clock: 2, subscription: node.pulls[0] }, [9, 9]); // the pending pull's request id: not its reply
    publish({ clock: 1 }, [1, 2, 3, 4]);
    assert.deepEqual(Array.from(await s.ready(1)), [1, 2, 3, 4]);
    assert.equal(s.clock, 1);
    assert.equal(w.bytes.published, 32 + 16, 'only the publication taken is counted');
    publish({ clock: 0 }, [5, 6, 7, 8]); // an older clock: fresher values, the clock stays
    await new Promise((r) => setImmediate(r));
    assert.equal(s.clock, 1);
    assert.deepEqual(Array.from(s.values(1)!), [5, 6, 7, 8]);
    publish({ clock: 2, positions: Float64Array.of(2) }, [1, 1]); // a position past the two keys
    publish({ clock: 2, positions: Float64Array.of(1) }, [1]); // one value for a key of two
    publish({ clock: 2, positions: Float64Array.of(1) }, [0, -1]);
    assert.deepEqual(Array.from(await s.ready(2)), [5, 6, 0, -1], 'only the well-formed change applied');
    node.deliver(encodePullReply(node.pulls[0], [Float32Array.of(7, 7)]));
    assert.deepEqual(Array.from((await pull)!), [7, 7], 'the pull was still pending');
    w.close();
  });
});
