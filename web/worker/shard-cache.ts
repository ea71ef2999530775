/**
 * Shards kept in IndexedDB (idb-keyval), under the job's data
 * version: a reloaded tab reads its shards from here instead of downloading them again.
 */
import { get, set } from 'idb-keyval';

export class ShardCache {
  /** Shards fetched over the network / read from IndexedDB since the page loaded. */
  downloads = 0;
  hits = 0;

  constructor(
    private readonly base: string,
    private readonly job: number,
    private readonly version: string,
  ) {}

  private key(kind: string, index: number): string {
    return `tabshard:${kind}:${this.job}:${this.version}:${index}`;
  }

  async shard(index: number): Promise<Uint8Array> {
    const k = this.key('shard', index);
    const have = await get<Uint8Array>(k).catch(() => undefined);
    if (have instanceof Uint8Array) {
      this.hits++;
      return have;
    }
    const res = await fetch(`${this.base}/api/jobs/${this.job}/shards/${index}`);
    if (!res.ok) throw new Error(`shard ${index}: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    this.downloads++;
    await set(k, bytes).catch(() => {}); // a full or unavailable IndexedDB only costs a re-download
    return bytes;
  }
}
