/**
 * The cluster of `npm run bench:browser`'s transport benchmark, which the e2e harness runs in
 * place of `tabshard start` (`Harness.start({ clusterCommand })`): the embedded cluster
 * (server/cluster.ts) with `start`'s demo tables and no job, whose server nodes are echo nodes
 * (echo-node.ts: the raw echo injected). Takes the flags the harness gives `start` (`--port`,
 * `--json`, `--nodes`, `--data-dir`) and prints the same ready line.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEmbeddedCluster } from '../../server/cluster.ts';
import { DEMO_TABLES } from '../../server/demo-tables.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
    nodes: { type: 'string', default: '1' },
    'data-dir': { type: 'string' },
  },
});
if (!values.json) throw new Error('echo-cluster prints JSON lines only: pass --json');
const c = await startEmbeddedCluster({
  nodes: Number(values.nodes),
  port: Number(values.port),
  dataDir: values['data-dir'],
  tables: DEMO_TABLES,
  jobs: [],
  nodeCommand: ['--import', 'tsx', fileURLToPath(new URL('./echo-node.ts', import.meta.url))],
});
const nodes = c.nodes.map((n) => ({ id: n.id, pid: n.child.pid, addresses: n.addresses }));
console.log(JSON.stringify({ event: 'ready', gateway: c.gateway, nodes, adminToken: c.adminToken, jobs: [] }));
const stop = () => c.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
