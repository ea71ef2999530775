/**
 * What a worker needs to know about a cluster: the ring, where each server node listens (per
 * transport), and the job's tables. Carried in RING control messages; `parseClusterInfo`
 * validates untrusted JSON.
 */
import { TabshardError } from './errors.ts';
import { Ring, type RingJSON } from './ring.ts';
import { parseTableSpec, type TableSpec } from './table.ts';
import type { TransportKind } from './transport/types.ts';

export interface ClusterInfo {
  ring: RingJSON;
  /** node id → transport → address, e.g. { n1: { tcp: 'tcp://127.0.0.1:4001' } }. */
  addresses: Record<string, Partial<Record<TransportKind, string>>>;
  tables: TableSpec[];
  /** Replicas per key range (k; docs/architecture.md §6): each range's master forwards to the next k nodes of its chain. Absent: 0. */
  replicas?: number;
  /** While a node joins or drains: the ring being copied to (its members get copies and forwards; `ring` still decides ownership). */
  next?: RingJSON;
  /** The last step before the switch to `next`: masters hold new pushes for keys whose master changes. */
  frozen?: boolean;
  /**
   * RING install only: the public key (Ed25519, SPKI DER, base64) nodes check capabilities with
   * (PROTOCOL.md §6.2). Absent: an install leaves the node's key as it was.
   */
  capabilityKey?: string;
  /**
   * The gateway's view only (`GET /api/jobs/:job/cluster`): the ICE servers a worker's WebRTC
   * peers use — STUN URLs, and TURN URLs with credentials minted for this reply (they expire).
   */
  iceServers?: IceServerInfo[];
}

/** One entry of RTCConfiguration.iceServers. */
export interface IceServerInfo {
  urls: string;
  username?: string;
  credential?: string;
}

/** Most ICE servers a cluster info may carry, and the longest URL, username or credential. */
export const MAX_ICE_SERVERS = 16;
export const MAX_ICE_FIELD = 512;

/** Longest `capabilityKey` accepted (an Ed25519 SPKI key is 60 characters of base64). */
export const MAX_CAPABILITY_KEY_CHARS = 1024;

/** Largest replication factor a cluster may ask for. */
export const MAX_REPLICAS = 8;

export function parseClusterInfo(v: unknown): ClusterInfo {
  const bad = (why: string) => new TabshardError('TS_ERR_FRAME_MALFORMED', `cluster info: ${why}`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const o = v as Record<string, unknown>;
  const ring = Ring.fromJSON(o.ring).toJSON();
  if (typeof o.addresses !== 'object' || o.addresses === null) throw bad('addresses');
  const addresses: ClusterInfo['addresses'] = {};
  const next = o.next === undefined ? undefined : Ring.fromJSON(o.next).toJSON();
  for (const node of new Set([...ring.nodes, ...(next?.nodes ?? [])])) {
    const a = (o.addresses as Record<string, unknown>)[node];
    if (typeof a !== 'object' || a === null) throw bad(`no address for ${node}`);
    addresses[node] = {};
    for (const [k, x] of Object.entries(a)) {
      if (!['tcp', 'ws', 'webrtc', 'memory'].includes(k) || typeof x !== 'string') throw bad(`address ${node}.${k}`);
      addresses[node][k as TransportKind] = x;
    }
  }
  if (!Array.isArray(o.tables)) throw bad('tables');
  const info: ClusterInfo = { ring, addresses, tables: o.tables.map(parseTableSpec) };
  if (o.replicas !== undefined) {
    if (!Number.isInteger(o.replicas) || (o.replicas as number) < 0 || (o.replicas as number) > MAX_REPLICAS)
      throw bad(`replicas must be an integer in [0, ${MAX_REPLICAS}]`);
    info.replicas = o.replicas as number;
  }
  if (o.capabilityKey !== undefined) {
    const k = o.capabilityKey;
    if (
      typeof k !== 'string' ||
      k.length === 0 ||
      k.length > MAX_CAPABILITY_KEY_CHARS ||
      !/^[A-Za-z0-9+/]+={0,2}$/.test(k)
    )
      throw new TabshardError(
        'TS_ERR_INVALID_ARGUMENT',
        `cluster info: capabilityKey must be base64 of at most ${MAX_CAPABILITY_KEY_CHARS} characters`,
      );
    info.capabilityKey = k;
  }
  if (o.iceServers !== undefined) info.iceServers = parseIceServers(o.iceServers);
  if (next !== undefined) info.next = next;
  if (o.frozen !== undefined) {
    if (typeof o.frozen !== 'boolean' || next === undefined) throw bad('frozen must be a boolean, with next');
    info.frozen = o.frozen;
  }
  return info;
}

/** Checks untrusted `iceServers`: at most MAX_ICE_SERVERS entries of short strings; TS_ERR_FRAME_MALFORMED otherwise. */
export function parseIceServers(v: unknown): IceServerInfo[] {
  const bad = () => new TabshardError('TS_ERR_FRAME_MALFORMED', 'cluster info: iceServers');
  if (!Array.isArray(v) || v.length > MAX_ICE_SERVERS) throw bad();
  const str = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length <= MAX_ICE_FIELD;
  return v.map((e) => {
    if (typeof e !== 'object' || e === null) throw bad();
    const { urls, username, credential } = e as Record<string, unknown>;
    if (!str(urls) || !/^(stun|stuns|turn|turns):/.test(urls as string)) throw bad();
    if ((username !== undefined && !str(username)) || (credential !== undefined && !str(credential))) throw bad();
    return {
      urls: urls as string,
      ...(username === undefined ? {} : { username: username as string }),
      ...(credential === undefined ? {} : { credential: credential as string }),
    };
  });
}
