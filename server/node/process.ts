/**
 * A server node as a process: listens on TCP (workers and server-to-server) and, unless
 * disabled, on WebRTC data channels whose handshakes arrive over a second TCP port. Until a
 * server manager installs a ring, the node is a cluster of one and owns every key.
 */
import wrtc from '@roamhq/wrtc';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { Ring } from '../../shared/ring.ts';
import type { IceConfig } from '../auth/turn.ts';
import { tcpDialer, tcpListen } from '../transports/tcp.ts';
import { WebRtcListener } from '../transports/webrtc.ts';
import { startGcMonitor } from './gc-monitor.ts';
import { type RawHandler, ServerNode } from './node.ts';

export interface NodeProcessOptions {
  id: string;
  host?: string;
  port?: number;
  webrtc?: boolean;
  /**
   * Takes messages before they are decoded (node.ts, RawHandler): for programs that build their
   * own node process (bench/browser/echo-node.ts); the CLI never sets it.
   */
  rawHandler?: RawHandler;
  /** Admin token required for RING install, TABLE and FENCE (none: open, for local development). */
  adminToken?: string;
  /** ICE servers for the node's side of each WebRTC connection (TURN credentials minted per handshake). */
  ice?: IceConfig;
  /** The host others are told to dial (its addresses' host part), when it is not `host` (e.g. `host` 0.0.0.0). */
  advertise?: string;
}

export interface RunningNode {
  node: ServerNode;
  addresses: ClusterInfo['addresses'][string];
  close(): Promise<void>;
}

export async function startNode(opts: NodeProcessOptions): Promise<RunningNode> {
  const gc = startGcMonitor();
  const node = new ServerNode(opts.id, {
    rawHandler: opts.rawHandler,
    adminToken: opts.adminToken,
    gc: gc.totals,
    dialer: tcpDialer(),
  });
  const tcp = await tcpListen({ host: opts.host, port: opts.port ?? 0 });
  node.listen(tcp);
  // What others are told: the listeners' addresses with the advertised host instead of the bound one.
  const told = (address: string) =>
    opts.advertise ? address.replace(/^((?:webrtc\+)?tcp:\/\/)[^/]+:(\d+)$/, `$1${opts.advertise}:$2`) : address;
  const addresses: RunningNode['addresses'] = { tcp: told(tcp.address) };
  if (opts.webrtc !== false) {
    const ice = opts.ice && !opts.ice.empty ? opts.ice : null;
    const rtc = new WebRtcListener({
      signalling: await tcpListen({ host: opts.host }),
      wrtc,
      ...(ice ? { config: () => ({ iceServers: ice.servers(`node-${opts.id}`) }) } : {}),
    });
    node.listen(rtc);
    addresses.webrtc = told(rtc.address);
  }
  node.setCluster({
    ring: new Ring([opts.id], { version: 0 }).toJSON(),
    addresses: { [opts.id]: addresses },
    tables: [],
  });
  return {
    node,
    addresses,
    close: () => {
      gc.stop();
      return node.close();
    },
  };
}
