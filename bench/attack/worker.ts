/**
 * bench:attack's malicious worker (bench/attack/run.ts spawns it): a headless worker assembled
 * from the project's client library as `tabshard worker` is (client/node/cli.ts: Worker,
 * SchedulerSession, TaskRunner, the app's gradient in this process with tfjs), but over the ws
 * relay only, every node connection wrapped so its frames go through e2e/raw-frames.ts's
 * Tamperer: each push of the model table is rewritten by `--attack` (one attack on every task),
 * and a refusal of a rewritten frame is answered to the runner with an ACK so it goes on.
 * `--attack hoard` opens a scheduler session instead, keeps `maxLeases` leases held and
 * heartbeated without ever finishing one, and takes new ones as they are taken away.
 *
 *   node --import tsx bench/attack/worker.ts --url http://127.0.0.1:8080 --job 1 --attack flip100 [--seed 1]
 *
 * Prints `{"event":"worker","worker":N}` once its session is open and `{"event":"finished",…}`
 * with what the attack got when the job is done.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import WebSocket from 'ws';
import xxhash from 'xxhash-wasm';
import { bindApp, parseAppInfo } from '../../apps/workers.ts';
import { readAhead } from '../../client/read-ahead.ts';
import { TaskRunner } from '../../client/runner.ts';
import { SchedulerSession } from '../../client/session.ts';
import { initTf } from '../../client/tf-backend.ts';
import { WsDialer } from '../../client/transports/ws.ts';
import { Worker } from '../../client/worker.ts';
import { type Attack, codeOf, json, socket, T, Tamperer, type TamperLink } from '../../e2e/raw-frames.ts';
import { type DecodedShard, decodeShard } from '../../shared/apps/shard.ts';
import { parseClusterInfo } from '../../shared/cluster.ts';
import type { TabshardError } from '../../shared/errors.ts';
import { type Conn, concatParts, type Dialer } from '../../shared/transport/types.ts';

/** A connection whose frames pass through a tamper link both ways. */
class TamperedConn implements Conn {
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  private readonly link: TamperLink;

  constructor(
    private readonly real: Conn,
    tamper: Tamperer,
  ) {
    this.link = tamper.link(
      (m) => real.send([m]),
      (m) => this.onmessage?.(m),
    );
    real.onmessage = (m) => this.link.fromNode(m);
    real.onclose = (err) => this.onclose?.(err);
  }

  get kind() {
    return this.real.kind;
  }
  get remote() {
    return this.real.remote;
  }
  get closed() {
    return this.real.closed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    this.link.fromClient(concatParts(parts)); // a copy: the caller's buffers are free at once
    onSent?.();
  }

  close(err?: TabshardError): void {
    this.real.close(err);
  }
}

async function getJson(url: string) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** Trains with tampered pushes until the job is done; returns what the tamperer saw. */
async function tampering(base: string, job: number, attack: Attack, seed: number) {
  const info = await getJson(`${base}/api/jobs/${job}`);
  const cluster = parseClusterInfo(await getJson(`${base}/api/jobs/${job}/cluster`));
  const model = cluster.tables.find((t) => t.name === info.tables[0]);
  if (!model) throw new Error(`no table ${info.tables[0]} in job ${job}`);
  const { h64Raw } = await xxhash();
  const tamper = new Tamperer({
    job,
    table: model.id,
    bounds: model.bounds ?? {},
    shards: Number(info.shards),
    attacks: [attack],
    seed,
    h64: (b) => h64Raw(b),
  });
  const ws = new WsDialer(WebSocket as unknown as ConstructorParameters<typeof WsDialer>[0]);
  const tampered: Dialer = { kind: 'ws', dial: async (address) => new TamperedConn(await ws.dial(address), tamper) };
  const math = bindApp(parseAppInfo(info));
  await initTf(tf, {});
  const worker = await Worker.connect({
    seed: async () => parseClusterInfo(await getJson(`${base}/api/jobs/${job}/cluster`)),
    dialers: { ws: tampered },
    prefer: ['ws'],
    job,
  });
  await worker.connectAll();
  const session = await SchedulerSession.open(await ws.dial(`${base.replace(/^http/, 'ws')}/api/jobs/${job}/session`), {
    agent: `bench:attack ${attack}`,
    transport: 'ws',
    worker: worker.id,
  });
  console.log(JSON.stringify({ event: 'worker', job, worker: session.worker }));
  const loadShard = readAhead(async (index): Promise<DecodedShard> => {
    const res = await fetch(`${base}/api/jobs/${job}/shards/${index}`);
    if (!res.ok) throw new Error(`shard ${index}: HTTP ${res.status}`);
    return decodeShard(new Uint8Array(await res.arrayBuffer()));
  }, Number(info.shards));
  const runner = new TaskRunner<DecodedShard>({
    worker,
    session,
    auditTable: info.auditTable,
    app: {
      shard: loadShard,
      pulls: (shard) => math.pulls(shard),
      gradient: (shard, values) => math.gradient(tf, shard, values),
    },
  });
  const totals = await runner.run();
  session.close();
  worker.close();
  const t = tamper.tallies.get(attack)!;
  return {
    tasks: totals.tasks,
    sent: t.sent,
    codes: t.codes,
    applied: t.applied,
    skipped: t.skipped,
    marginal: t.marginal,
    unexpected: t.unexpected,
    own: tamper.own.codes,
    tasksWithoutGradient: tamper.lostTasks().length,
  };
}

/**
 * Holds `maxLeases` leases at all times: each LEASE's task is heartbeated on the job's period
 * and never finished; when a heartbeat is refused (the lease was taken away) or a LEASE comes
 * back `wait`, it asks again, until a LEASE says the job is done.
 */
async function hoard(base: string, job: number) {
  const s = await socket(`${base.replace(/^http/, 'ws')}/api/jobs/${job}/session`);
  const w = json(await s.call({ type: T.HELLO, json: { role: 'worker', agent: 'bench:attack hoard' } }));
  console.log(JSON.stringify({ event: 'worker', job, worker: w.worker }));
  const beat = Number(w.heartbeatMs);
  const codes: Record<string, number> = {};
  const heldMs: number[] = [];
  let leases = 0;
  let sent = 0;
  const slot = async () => {
    for (;;) {
      sent++;
      const reply = await s.call({ type: T.LEASE, json: {} });
      const r = json(reply);
      if (codeOf(reply) !== 'ok') throw new Error(`LEASE: ${codeOf(reply)}`);
      if (r.done) return;
      if (typeof r.task !== 'number') continue; // {wait}: ask again
      leases++;
      const t0 = performance.now();
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, beat)); // the heartbeat period (§6.1)
        sent++;
        const code = codeOf(await s.call({ type: T.HEARTBEAT, json: { task: r.task, attempt: r.attempt } }));
        codes[code] = (codes[code] ?? 0) + 1;
        if (code !== 'ok') break;
      }
      heldMs.push(Math.round(performance.now() - t0));
    }
  };
  await Promise.all(Array.from({ length: Number(w.maxLeases) }, slot));
  s.close();
  return { tasks: 0, sent, codes, applied: 0, leases, heldMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      job: { type: 'string', default: '1' },
      attack: { type: 'string' },
      seed: { type: 'string', default: '1' },
    },
  });
  if (!values.url || !values.attack) {
    console.error('usage: worker.ts --url http://gateway --job N --attack <attack|hoard> [--seed S]');
    process.exit(2);
  }
  const base = values.url.replace(/\/$/, '');
  const job = Number(values.job);
  const out =
    values.attack === 'hoard'
      ? await hoard(base, job)
      : await tampering(base, job, values.attack as Attack, Number(values.seed));
  console.log(JSON.stringify({ event: 'finished', attack: values.attack, ...out }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
