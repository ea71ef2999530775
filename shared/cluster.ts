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
}

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
  if (next !== undefined) info.next = next;
  if (o.frozen !== undefined) {
    if (typeof o.frozen !== 'boolean' || next === undefined) throw bad('frozen must be a boolean, with next');
    info.frozen = o.frozen;
  }
  return info;
}
