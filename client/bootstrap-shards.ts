/**
 * A worker's shards (docs/workers.md, "Shards"): each is read once — from the platform's store
 * (IndexedDB in the page, so a reloaded tab does not download it again; memory in Node) or from
 * the gateway, then kept in the store — decoded once, handed to the compute once, and the next
 * one is read ahead while a task runs (client/read-ahead.ts).
 */
import { type DecodedShard, decodeShard } from '../shared/apps/shard.ts';
import type { ShardStore, WorkerCompute } from './bootstrap-types.ts';
import type { GatewayApi } from './gateway-api.ts';
import { readAhead } from './read-ahead.ts';

/** Shards kept in this process's memory (the Node worker's store). */
export class MemoryShardStore implements ShardStore {
  private readonly kept = new Map<string, Uint8Array>();

  async get(job: number, version: string, index: number): Promise<Uint8Array | undefined> {
    return this.kept.get(`${job}:${version}:${index}`);
  }

  async put(job: number, version: string, index: number, bytes: Uint8Array): Promise<void> {
    this.kept.set(`${job}:${version}:${index}`, bytes);
  }
}

export interface ShardReaderOptions {
  api: GatewayApi;
  store: ShardStore;
  compute: WorkerCompute;
  job: number;
  version: string;
  count: number;
  /** Counted as shards are read: downloaded, or found in the store. */
  counts: { downloads: number; cacheHits: number };
  onread?: () => void;
}

/** The runner's `shard(index)`: each shard read, decoded and handed to the compute once, the next one read ahead. */
export function shardReader(o: ShardReaderOptions): (index: number) => Promise<DecodedShard> {
  return readAhead(async (index) => {
    let bytes = await o.store.get(o.job, o.version, index).catch(() => undefined);
    if (bytes instanceof Uint8Array) o.counts.cacheHits++;
    else {
      bytes = await o.api.shard(o.job, index);
      o.counts.downloads++;
      await o.store.put(o.job, o.version, index, bytes).catch(() => {}); // a full store only costs a re-download
    }
    const shard = decodeShard(bytes);
    o.compute.load?.(index, bytes);
    o.onread?.();
    return shard;
  }, o.count);
}
