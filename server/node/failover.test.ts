/**
 * Chain replication and failover on the seeded in-memory network (k = 1, three nodes): every
 * acknowledged push survives the failure of one node at any point of the chain — before the
 * master's forward reaches the replica, after the replica wrote it but before its ack is back,
 * and the replica itself dying — and a push resent after the failover is applied exactly once.
 * A node is killed by closing all its connections and its listener (what kill -9 looks like
 * from the network); the manager notices, installs the ring without it, and the worker re-slices.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from '../../client/worker.ts';
import { decodeObject } from '../../shared/protocol/control.ts';
import { decodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import { Ring } from '../../shared/ring.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn, Listener } from '../../shared/transport/types.ts';
import { tableSpec, testCluster } from './testkit.ts';

const KEYS = 1 << 14;
const TABLES = [
  tableSpec(1, 'sum', 'dense', KEYS, 1, 'sum'),
  tableSpec(2, 'ada', 'sparse', 2 ** 40, 2, 'adagrad', { lr: 0.1 }),
];

/** Wraps a connection so that every incoming message meets `tap` before the node sees it. */
function tapConn(conn: Conn, tap: (msg: Uint8Array) => boolean): Conn {
  let handler: ((m: Uint8Array) => void) | null = null;
  conn.onmessage = (m) => {
    if (tap(m)) handler?.(m);
  };
  return new Proxy(conn, {
    set(target, prop, value) {
      if (prop === 'onmessage') handler = value;
      else (target as unknown as Record<string | symbol, unknown>)[prop] = value;
      return true;
    },
    get(target, prop) {
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

type When = 'forward-lost' | 'forward-written' | 'replica-dies';

async function scenario(seed: number, when: When, nth: number) {
  const net = new MemoryNetwork({ seed, maxDelay: 3 });
  // Each node's connections are tapped so a test can act when a FORWARD arrives.
  let onForward: ((at: string, from: string) => boolean) | null = null;
  const origListen = net.listen.bind(net);
  net.listen = (name: string) => {
    const l = origListen(name);
    const out: Listener = {
      kind: l.kind,
      address: l.address,
      onconnection: null,
      close: () => l.close(),
    };
    l.onconnection = (conn) => {
      // A server link opens with HELLO {role: server, node}: that names the sender of its FORWARDs.
      let from = '';
      out.onconnection?.(
        tapConn(conn, (m) => {
          if (m[1] === MsgType.HELLO) from = String(decodeObject(decodeFrame(m)).node ?? '');
          return m[1] === MsgType.FORWARD && onForward ? onForward(name, from) : true;
        }),
      );
    };
    return out;
  };
  const c = await testCluster(TABLES, { net, replicas: 1, heartbeatMs: 20, deadAfterMs: 200 });
  const w = await Worker.connect({
    seed: 'memory://n1',
    dialers: { memory: net.dialer() },
    workerId: 9,
    timeoutMs: 5000,
  });
  const kill = (id: string) => void c.nodes.find((n) => n.id === id)!.close();
  let forwards = 0;
  let victim = '';
  onForward = (at, from) => {
    if (++forwards !== nth || victim) return true;
    if (when === 'replica-dies') {
      victim = at;
      kill(at);
      return false;
    }
    victim = from; // the master that sent this forward
    if (when === 'forward-lost') {
      kill(victim);
      return false;
    }
    queueMicrotask(() => kill(victim));
    return true;
  };
  const sum = w.table('sum');
  const ada = w.table('ada');
  const sparseKeys = Float64Array.from({ length: 600 }, (_, i) => i * 1_000_003 * 1024);
  const ones = new Float32Array(KEYS).fill(1);
  const grads = new Float32Array(2 * sparseKeys.length).fill(0.5);
  const rounds = 12;
  for (let r = 0; r < rounds; r++) {
    w.setTask(r + 1, 0);
    await Promise.all([w.wait(sum.push({ begin: 0, end: KEYS }, ones)), w.wait(ada.push(sparseKeys, grads))]);
  }
  assert.ok(victim, 'a node was killed during the run');
  assert.equal(c.mgr.nodeStates().find((n) => n.id === victim)?.state, 'dead');
  const got = (await w.wait(sum.pull({ begin: 0, end: KEYS })))!;
  for (let k = 0; k < KEYS; k++)
    if (got[k] !== rounds) assert.fail(`key ${k} holds ${got[k]}, ${rounds} pushes were acknowledged`);
  const adaGot = (await w.wait(ada.pull(sparseKeys)))!;
  w.close();
  await c.close();
  return { victim, adaGot };
}

/** The same pushes with no failure: what AdaGrad's values must be (its accumulators replicated too). */
async function reference() {
  const net = new MemoryNetwork({ seed: 1, maxDelay: 3 });
  const c = await testCluster(TABLES, { net, replicas: 1 });
  const w = await Worker.connect({ seed: 'memory://n1', dialers: { memory: net.dialer() }, workerId: 9 });
  const ada = w.table('ada');
  const sparseKeys = Float64Array.from({ length: 600 }, (_, i) => i * 1_000_003 * 1024);
  const grads = new Float32Array(2 * sparseKeys.length).fill(0.5);
  for (let r = 0; r < 12; r++) await w.wait(ada.push(sparseKeys, grads));
  const v = (await w.wait(ada.pull(sparseKeys)))!;
  w.close();
  await c.close();
  return v;
}

describe('chain replication survives one node failure at any point (k = 1)', () => {
  let ref: Float32Array;
  it('reference run without failures', async () => {
    ref = await reference();
  });
  for (const when of ['forward-lost', 'forward-written', 'replica-dies'] as When[])
    for (const nth of [3, 17])
      it(`${when} at forward ${nth}: every acknowledged push is there once, updater state intact`, async () => {
        const { adaGot } = await scenario(100 + nth, when, nth);
        assert.deepEqual([...adaGot], [...ref], 'AdaGrad values equal the run without a failure');
      });
});

describe('two nodes dying at once', () => {
  it('are both left out of the ring, one install each, and the survivors serve every key', async () => {
    const net = new MemoryNetwork({ seed: 7, maxDelay: 3 });
    const c = await testCluster(TABLES, { net, ids: ['n1', 'n2', 'n3', 'n4'], replicas: 1 });
    const w = await Worker.connect({ seed: 'memory://n1', dialers: { memory: net.dialer() }, workerId: 9 });
    const sum = w.table('sum');
    const ones = new Float32Array(KEYS).fill(1);
    await w.wait(sum.push({ begin: 0, end: KEYS }, ones));
    // Both deaths are declared before the first ring without a dead node is installed.
    for (const id of ['n2', 'n3']) void c.nodes.find((n) => n.id === id)!.close();
    const ring = () => Ring.fromJSON(c.mgr.info.ring);
    for (let t = 0; t < 500 && ring().nodes.some((n) => n === 'n2' || n === 'n3'); t++)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual([...ring().nodes].sort(), ['n1', 'n4']);
    assert.equal(ring().version, 3, 'one ring per death');
    await w.wait(sum.push({ begin: 0, end: KEYS }, ones)); // every key has a live master
    w.close();
    await c.close();
  });
});
