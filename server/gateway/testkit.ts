/**
 * Test support (imported by *.test.ts only): a cluster in this process as a worker outside it
 * sees one — two server nodes listening on TCP and WebRTC (signalling over TCP), enforcing
 * capabilities and sealing receipts, the server manager, one job's driver (any registered
 * application; logreg by default) and the gateway on a real port with its relays, job API and
 * scheduler sessions. A worker knows only `url`, as a browser tab or `tabshard worker` does.
 */
import { jobApp } from '../../apps/jobs.ts';
import { CapabilitySigner } from '../auth/capability.ts';
import { ReceiptKey } from '../auth/receipt.ts';
import { type DriverConfig, JobDriver } from '../jobs/driver.ts';
import { ServerManager } from '../manager.ts';
import { startNode } from '../node/process.ts';
import { tcpDialer } from '../transports/tcp.ts';
import { buildApp } from './app.ts';

const TOKEN = 'gateway-test-token';

export interface GatewayCluster {
  /** The gateway, `http://127.0.0.1:<port>`. */
  url: string;
  driver: JobDriver;
  /** `GET path` on the gateway, as JSON. */
  get<T>(path: string): Promise<T>;
  close(): Promise<void>;
}

/** Job 1 of `app` on `shards` shards under `config`, served by a gateway on a free port. */
export async function gatewayCluster(o: {
  shards: number;
  config: DriverConfig;
  app?: string;
}): Promise<GatewayCluster> {
  const signer = CapabilitySigner.generate();
  const nodes = await Promise.all(['n1', 'n2'].map((id) => startNode({ id, adminToken: TOKEN })));
  const manager = new ServerManager(
    tcpDialer(),
    nodes.map((n) => ({ id: n.node.id, addresses: n.addresses, control: n.addresses.tcp! })),
    { adminToken: TOKEN, capabilityKey: signer.publicKey() },
  );
  await manager.start();
  const app = await jobApp(o.app ?? 'logreg').prepare({ job: 1, shards: o.shards });
  const driver = new JobDriver(app, manager, o.config, null, signer, new ReceiptKey(TOKEN));
  await driver.start();
  const gateway = buildApp({
    cluster: () => manager.info,
    stats: () => manager.stats(),
    dialer: tcpDialer(),
    jobs: () => [driver],
    adminToken: TOKEN,
  });
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    driver,
    async get<T>(path: string): Promise<T> {
      const res = await fetch(`${url}${path}`);
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
      return (await res.json()) as T;
    },
    async close() {
      driver.stop();
      await gateway.close();
      manager.close();
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}
