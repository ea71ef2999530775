/**
 * Test support: a cluster of server nodes and a manager in this process, on the seeded in-memory
 * network or on TCP over 127.0.0.1 (for tests that put workers against real nodes).
 */
import type { TableSpec } from '../../shared/table.ts';
import type { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Dialer } from '../../shared/transport/types.ts';
import { ServerManager } from '../manager.ts';
import { tcpDialer, tcpListen } from '../transports/tcp.ts';
import { ServerNode } from './node.ts';

export interface TestCluster {
  nodes: ServerNode[];
  mgr: ServerManager;
  /** A node address a worker can take as its seed, and the dialer for it. */
  seed: string;
  dialer: Dialer;
  close(): Promise<void>;
}

/** Nodes `ids` (default n1, n2, n3) with `tables` defined on every one; `net` absent: TCP. */
export async function testCluster(
  tables: TableSpec[],
  opts: {
    net?: MemoryNetwork;
    ids?: string[];
    vnodes?: number;
    adminToken?: string;
    /** The capability signer's public key, installed on the nodes with the ring (with `adminToken`: enforced). */
    capabilityKey?: string;
    /** Replicas per range (default 0 here: most tests look at one copy; the manager's own default is 1). */
    replicas?: number;
    heartbeatMs?: number;
    deadAfterMs?: number;
  } = {},
): Promise<TestCluster> {
  const { net, adminToken } = opts;
  const dialer = net ? net.dialer() : tcpDialer();
  const nodes = (opts.ids ?? ['n1', 'n2', 'n3']).map((id) => new ServerNode(id, { adminToken, dialer }));
  const addresses: string[] = [];
  for (const n of nodes) {
    const listener = net ? net.listen(n.id) : await tcpListen();
    n.listen(listener);
    addresses.push(net ? `memory://${n.id}` : listener.address);
  }
  const mgr = new ServerManager(
    dialer,
    nodes.map((n, i) => ({ id: n.id, addresses: { [dialer.kind]: addresses[i] }, control: addresses[i] })),
    {
      vnodes: opts.vnodes ?? 16,
      adminToken,
      capabilityKey: opts.capabilityKey,
      replicas: opts.replicas ?? 0,
      heartbeatMs: opts.heartbeatMs,
      deadAfterMs: opts.deadAfterMs,
    },
  );
  await mgr.start();
  for (const t of tables) await mgr.defineTable(t);
  return {
    nodes,
    mgr,
    seed: addresses[0],
    dialer,
    close: async () => {
      mgr.close();
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}

/** A table of job 0 with zeros as initial values. */
export function tableSpec(
  id: number,
  name: string,
  kind: 'dense' | 'sparse',
  keySpace: number,
  valueLength = 1,
  updater = 'sum',
  params = {},
): TableSpec {
  return { job: 0, id, name, kind, keySpace, valueLength, updater, params, init: { kind: 'zeros' } };
}
