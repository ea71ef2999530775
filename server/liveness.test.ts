/**
 * Failure detection (server/liveness.ts) against a host whose heartbeat answers the test
 * controls: a node that answers stays up; one that stops answering is suspect after two periods
 * and dead after `deadAfterMs`; one that answers again is up; a refused connection is dead at
 * once; and a tick that comes late (this process was busy) does not count the silence it saw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../shared/errors.ts';
import { Liveness, type ManagerEvent, type Member } from './liveness.ts';

type Mode = 'answer' | 'hang' | 'refuse';

function group(modes: Record<string, Mode>) {
  const members: Member[] = Object.keys(modes).map((id) => ({
    entry: { id, addresses: {}, control: `tcp://${id}` },
    state: 'up',
    lastSeen: 0,
    probing: false,
  }));
  const events: Array<ManagerEvent | { type: 'dead'; node: string; reason: string }> = [];
  const waiters: Array<{ pred: (e: (typeof events)[number]) => boolean; resolve: () => void }> = [];
  const push = (e: (typeof events)[number]) => {
    events.push(e);
    for (const w of [...waiters]) if (w.pred(e)) w.resolve();
  };
  const hung: Array<() => void> = [];
  let calls = 0;
  const callWaiters: Array<{ n: number; resolve: () => void }> = [];
  const live = new Liveness(
    {
      members: () => members,
      heartbeat: (node) => {
        calls++;
        for (const w of [...callWaiters]) if (calls >= w.n) w.resolve();
        const mode = modes[node];
        if (mode === 'answer') return Promise.resolve();
        if (mode === 'refuse') return Promise.reject(new TabshardError('TS_ERR_CONNECT_FAILED', 'refused'));
        return new Promise<void>((resolve) => hung.push(resolve));
      },
      dead: (node, reason) => {
        const m = members.find((x) => x.entry.id === node)!;
        if (m.state === 'dead') return;
        m.state = 'dead';
        push({ type: 'dead', node, reason });
      },
      event: push,
    },
    { heartbeatMs: 10, deadAfterMs: 80 },
  );
  const until = (pred: (e: (typeof events)[number]) => boolean) =>
    events.some(pred) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve }));
  /** Resolves once `n` more heartbeats were sent. */
  const heartbeats = (n: number) => new Promise<void>((resolve) => callWaiters.push({ n: calls + n, resolve }));
  // The detector's timer does not hold the process open; the test's does, while it runs.
  const keep = setInterval(() => {}, 1000);
  const stop = () => {
    live.stop();
    clearInterval(keep);
  };
  return { members, events, live, modes, hung, until, heartbeats, stop };
}

describe('failure detection', () => {
  it('a silent node is suspect, then dead; one that answers again is up; the others stay up', {
    timeout: 10_000,
  }, async () => {
    const g = group({ a: 'answer', b: 'hang', c: 'hang' });
    g.live.start();
    try {
      await g.until((e) => e.type === 'node-suspect' && e.node === 'c');
      g.modes.c = 'answer';
      for (const r of g.hung.splice(0)) r(); // c's heartbeat in flight is answered
      await g.until((e) => e.type === 'node-up' && e.node === 'c');
      await g.until((e) => e.type === 'dead' && e.node === 'b');
      const dead = g.events.find((e) => e.type === 'dead')!;
      assert.match((dead as { reason: string }).reason, /^no heartbeat for \d+ ms$/);
      assert.deepEqual(
        g.members.map((m) => [m.entry.id, m.state]),
        [
          ['a', 'up'],
          ['b', 'dead'],
          ['c', 'up'],
        ],
      );
      assert.equal(g.events.filter((e) => 'node' in e && e.node === 'a').length, 0, 'nothing said of a');
    } finally {
      g.stop();
    }
  });

  it('a refused connection is dead at once', { timeout: 10_000 }, async () => {
    const g = group({ a: 'answer', b: 'refuse' });
    g.live.start();
    try {
      await g.until((e) => e.type === 'dead' && e.node === 'b');
      assert.equal((g.events.find((e) => e.type === 'dead') as { reason: string }).reason, 'connection refused');
      assert.equal(g.events.filter((e) => e.type === 'node-suspect').length, 0);
    } finally {
      g.stop();
    }
  });

  it('a late tick (this process was busy) counts no silence: answering nodes are not declared dead', {
    timeout: 10_000,
  }, async () => {
    const g = group({ a: 'answer', b: 'answer' });
    g.live.start();
    try {
      await g.heartbeats(4);
      // Busy for three times the dead-after bound: no timer runs, no answer is read.
      const t0 = performance.now();
      while (performance.now() - t0 < 240);
      // The ticks after it: answers come in again; nobody is dead.
      await g.heartbeats(10);
      assert.deepEqual(
        g.events.filter((e) => e.type === 'dead'),
        [],
      );
      assert.ok(g.members.every((m) => m.state !== 'dead'));
    } finally {
      g.stop();
    }
  });
});
