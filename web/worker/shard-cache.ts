/**
 * The page's shard store for the bootstrap (client/bootstrap-types.ts, ShardStore): shards kept
 * in IndexedDB (idb-keyval) under the job's data version, so a reloaded tab reads its shards from
 * here instead of downloading them again.
 */
import { get, set } from 'idb-keyval';
import type { ShardStore } from '../../client/bootstrap-types.ts';

const key = (job: number, version: string, index: number) => `tabshard:shard:${job}:${version}:${index}`;

export class ShardCache implements ShardStore {
  async get(job: number, version: string, index: number): Promise<Uint8Array | undefined> {
    const have = await get<Uint8Array>(key(job, version, index));
    return have instanceof Uint8Array ? have : undefined;
  }

  put(job: number, version: string, index: number, bytes: Uint8Array): Promise<void> {
    return set(key(job, version, index), bytes);
  }
}
