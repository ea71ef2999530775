/**
 * The `tabshard` command line.
 *   tabshard start  [--nodes 3] [--port 8080] [--bench-raw] [--json]   embedded cluster: server nodes, manager, gateway
 *     --json prints one line {"event":"ready","gateway","nodes":[{id,addresses}],"adminToken"} instead of the banner
 *   tabshard server [--id n1] [--host h] [--port p] [--no-webrtc] [--bench-raw]   one server node
 */
import { parseArgs } from 'node:util';
import type { TableSpec } from '../shared/table.ts';
import { startEmbeddedCluster } from './cluster.ts';
import { startNode } from './node/process.ts';

const DEMO_TABLES: TableSpec[] = [
  {
    job: 0,
    id: 1,
    name: 'weights',
    kind: 'sparse',
    keySpace: 2 ** 24,
    valueLength: 1,
    updater: 'ftrl',
    params: {},
    init: { kind: 'zeros' },
  },
  {
    job: 0,
    id: 2,
    name: 'dense',
    kind: 'dense',
    keySpace: 1 << 20,
    valueLength: 1,
    updater: 'sgd',
    params: { lr: 0.1 },
    init: { kind: 'zeros' },
  },
  // Sum tables: what a worker pushes adds up exactly, so tests and benchmarks can read it back.
  {
    job: 0,
    id: 3,
    name: 'sum-sparse',
    kind: 'sparse',
    keySpace: 2 ** 24,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
  {
    job: 0,
    id: 4,
    name: 'sum-dense',
    kind: 'dense',
    keySpace: 1 << 20,
    valueLength: 1,
    updater: 'sum',
    params: {},
    init: { kind: 'zeros' },
  },
];

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      id: { type: 'string', default: 'n1' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      nodes: { type: 'string', default: '3' },
      'no-webrtc': { type: 'boolean', default: false },
      'bench-raw': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (cmd === 'server') {
    const running = await startNode({
      id: values.id!,
      host: values.host,
      port: Number(values.port),
      webrtc: !values['no-webrtc'],
      benchRaw: values['bench-raw'],
      adminToken: process.env.TABSHARD_ADMIN_TOKEN || undefined,
    });
    console.log(JSON.stringify({ event: 'listening', node: values.id, addresses: running.addresses }));
    const stop = () => running.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  if (cmd === 'start') {
    const c = await startEmbeddedCluster({
      nodes: Number(values.nodes),
      port: Number(values.port),
      tables: DEMO_TABLES,
      benchRaw: values['bench-raw'],
    });
    const stop = () => c.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (values.json) {
      const nodes = c.nodes.map((n) => ({ id: n.id, addresses: n.addresses }));
      console.log(JSON.stringify({ event: 'ready', gateway: c.gateway, nodes, adminToken: c.adminToken }));
      return;
    }
    console.log(`tabshard: ${c.nodes.length} server nodes, ring v${c.manager.info.ring.version}`);
    for (const n of c.nodes) console.log(`  node ${n.id}: ${Object.values(n.addresses).join('  ')}`);
    console.log(`  tables: ${DEMO_TABLES.map((t) => t.name).join(', ')}`);
    console.log(`  gateway: ${c.gateway}  (try ${c.gateway}/api/cluster)`);
    console.log(`  lab: ${c.gateway}/lab`);
    console.log('Ctrl-C stops the cluster.');
    return;
  }
  console.error(
    'usage: tabshard start [--nodes N] [--port P] [--bench-raw] [--json] | tabshard server [--id ID] [--host H] [--port P] [--no-webrtc]',
  );
  process.exit(2);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
