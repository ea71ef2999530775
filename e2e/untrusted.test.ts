/**
 * A client with no capability — a raw TCP connection to a node, or a page's socket through the
 * gateway's `/relay/<n>/data` — can neither read nor change any table (PROTOCOL.md §6.2): every
 * frame is answered with a coded refusal, and the tables are unchanged afterwards. The frames
 * are built by e2e/raw-frames.ts, written from PROTOCOL.md alone.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type ClusterReady, startCluster, stopCluster } from './harness.ts';
import { codeOf, json, type RawConn, socket, T, tcp } from './raw-frames.ts';

interface TableInfo {
  id: number;
  name: string;
  kind: string;
  keySpace: number;
  valueLength: number;
}

let child: ChildProcess | undefined;
let ready: ClusterReady;
let job: number;
let tables: TableInfo[];
let relays: Record<string, { ws: string }>;

/** What an admin reads of every table: push counts per node and the first 64 values of each. */
async function snapshot(): Promise<string> {
  const out: unknown[] = [];
  for (const n of ready.nodes) {
    const admin = await tcp(n.addresses.tcp);
    try {
      const hello = await admin.call({ type: T.HELLO, json: { role: 'admin', token: ready.adminToken } });
      assert.equal(codeOf(hello), 'ok');
      const stats = json(await admin.call({ type: T.STATS, json: {} }));
      out.push((stats.tables as Array<{ id: number; pushes: number }>).map((t) => [t.id, t.pushes]));
      for (const t of tables) {
        const r = await admin.call({ type: T.PULL, job, table: t.id, range: [0, Math.min(64, t.keySpace)] });
        // A node that does not own those keys says so; what it owns it reads back.
        out.push(codeOf(r) === 'ok' ? Array.from(new Float32Array(r.body.slice().buffer)) : codeOf(r));
      }
    } finally {
      admin.close();
    }
  }
  return JSON.stringify(out);
}

/** Every request a hostile client might try, and the code it must get. */
function attempts(): Array<[string, Parameters<RawConn['call']>[0], string[]]> {
  const t = tables[0];
  const forged = `${Buffer.from(JSON.stringify({ v: 1, kind: 'read', job, worker: 1, exp: Date.now() + 60_000 })).toString('base64url')}.${Buffer.alloc(64, 7).toString('base64url')}`;
  const needCap = ['TS_ERR_CAPABILITY_REQUIRED'];
  const forbidden = ['TS_ERR_FORBIDDEN'];
  return [
    ['RING query', { type: T.RING, job, json: {} }, needCap],
    ['STATS', { type: T.STATS, json: {} }, needCap],
    ['PULL', { type: T.PULL, job, table: t.id, range: [0, 8] }, needCap],
    ['SUBSCRIBE', { type: T.SUBSCRIBE, job, table: t.id, range: [0, 8], bytes: new Uint8Array(4) }, needCap],
    ['PUSH without a task', { type: T.PUSH, job, table: t.id, range: [0, 2], values: [1e6, -1e6] }, needCap],
    [
      'PUSH stamped as task 1',
      { type: T.PUSH, job, table: t.id, range: [0, 2], values: [1e6, -1e6], task: [1, 1, 0, 0] },
      needCap,
    ],
    ['CAP of garbage', { type: T.CAP, job, json: { cap: 'not-a-capability' } }, ['TS_ERR_CAPABILITY_INVALID']],
    ['CAP with a forged signature', { type: T.CAP, job, json: { cap: forged } }, ['TS_ERR_CAPABILITY_INVALID']],
    ['PULL after a forged CAP', { type: T.PULL, job, table: t.id, range: [0, 8] }, needCap],
    ['HELLO admin, wrong token', { type: T.HELLO, json: { role: 'admin', token: 'guess' } }, forbidden],
    ['HELLO server, wrong token', { type: T.HELLO, json: { role: 'server', node: 'n9', token: 'guess' } }, forbidden],
    ['TABLE', { type: T.TABLE, json: { ...t, job, updater: 'sum' } }, forbidden],
    ['FENCE', { type: T.FENCE, job, json: { table: t.id, task: 1, attempt: 99 } }, forbidden],
    ['CLOCK', { type: T.CLOCK, job, json: { clock: 5 } }, forbidden],
    ['RING install', { type: T.RING, json: { ring: { version: 99, nodes: ['x'] }, addresses: {} } }, forbidden],
    ['CHECKPOINT', { type: T.CHECKPOINT, job, json: { path: '/tmp/x.ckpt' } }, forbidden],
    ['KEYSET', { type: T.KEYSET, job, table: t.id, range: [0, 8], bytes: new Uint8Array(4) }, forbidden],
    ['FORWARD', { type: T.FORWARD, job, table: t.id, range: [0, 1], values: [1, 0, 0] }, forbidden],
    ['MIGRATE clear', { type: T.MIGRATE, job, table: t.id, range: [0, 8] }, forbidden],
  ];
}

async function tryAll(conn: RawConn): Promise<Array<[string, string]>> {
  const got: Array<[string, string]> = [];
  for (const [name, spec, want] of attempts()) {
    const code = codeOf(await conn.call(spec));
    assert.ok(want.includes(code), `${name}: got ${code}, want ${want.join(' or ')}`);
    got.push([name, code]);
  }
  return got;
}

describe('a client without a capability', { timeout: 120_000 }, () => {
  before(async () => {
    const started = await startCluster({ startArgs: ['--iterations', '1'] });
    child = started.child;
    ready = started.ready;
    job = ready.jobs[0].job;
    const res = await fetch(`${ready.gateway}/api/jobs/${job}/cluster`);
    assert.equal(res.status, 200);
    const info = (await res.json()) as { tables: TableInfo[]; addresses: Record<string, { ws: string }> };
    tables = info.tables;
    relays = info.addresses;
  });
  after(async () => {
    if (child) await stopCluster(child);
  });

  it('is refused every read and write over raw TCP to each node, and changes nothing', async () => {
    const before = await snapshot();
    for (const n of ready.nodes) {
      const conn = await tcp(n.addresses.tcp);
      try {
        await tryAll(conn);
      } finally {
        conn.close();
      }
    }
    assert.equal(await snapshot(), before, 'every table reads as it did');
  });

  it('is refused the same through the gateway relay, and changes nothing', async () => {
    const before = await snapshot();
    for (const [node, a] of Object.entries(relays)) {
      assert.match(a.ws, /\/relay\//, `node ${node} is reached through the relay, not its own address`);
      const conn = await socket(a.ws);
      try {
        await tryAll(conn);
      } finally {
        conn.close();
      }
    }
    assert.equal(await snapshot(), before, 'every table reads as it did');
  });
});
