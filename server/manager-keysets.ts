/**
 * The key sets the server manager installed on the nodes (KEYSET, PROTOCOL.md §6.2): task
 * capabilities name them as a table grant's `keys` (a shard's working set, say). Every node
 * keeps every set whole, so the manager remembers them all and sends each to a node that joins
 * later, right after the tables.
 */
import { TabshardError } from '../shared/errors.ts';
import { encodeKeySet } from '../shared/protocol/cap.ts';
import type { RpcPeer } from '../shared/rpc.ts';

export interface KeySetEntry {
  job: number;
  table: number;
  id: number;
  keys: Float64Array;
}

const u32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff;

export class ManagerKeySets {
  /** By `job/table/id`, in the order first defined. */
  private readonly sets = new Map<string, KeySetEntry>();

  /**
   * Checks a set (u32 ids, a sorted unique key list below 2^52: TS_ERR_INVALID_ARGUMENT,
   * TS_ERR_KEYS_UNSORTED, TS_ERR_KEY_OUT_OF_RANGE), remembers a copy of it (replacing one of the
   * same (job, table, id)), and returns the builder of its KEYSET frame.
   */
  define(job: number, table: number, id: number, keys: Float64Array): (requestId: number) => Uint8Array[] {
    if (!u32(job) || !u32(table) || !u32(id))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'a key set is named by u32 job, table and id');
    if (!(keys instanceof Float64Array)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'keys are a Float64Array');
    encodeKeySet(0, job, table, id, keys); // the checks, before anything is remembered
    const entry = { job, table, id, keys: keys.slice() };
    this.sets.set(`${job}/${table}/${id}`, entry);
    return build(entry);
  }

  /** Every set remembered, in the order first defined. */
  all(): KeySetEntry[] {
    return [...this.sets.values()];
  }

  /** Sends every set to a node (one that joins), pipelined on its connection. */
  async sendTo(peer: RpcPeer): Promise<void> {
    await Promise.all([...this.sets.values()].map((e) => peer.call(build(e))));
  }
}

function build(e: KeySetEntry): (requestId: number) => Uint8Array[] {
  return (requestId) => encodeKeySet(requestId, e.job, e.table, e.id, e.keys);
}
