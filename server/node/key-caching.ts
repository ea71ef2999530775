/**
 * Key caching on a server node (PROTOCOL.md §5.2): the key lists each connection asked to have
 * remembered, and the resolution of CACHED segments into them.
 */
import { TabshardError } from '../../shared/errors.ts';
import { KeyListCache, keyListHash } from '../../shared/key-cache.ts';
import { Flag, type Frame } from '../../shared/protocol/frame.ts';
import type { Conn } from '../../shared/transport/types.ts';

export class ConnKeyCaches {
  private readonly caches = new Map<Conn, KeyListCache<Float64Array>>();

  /**
   * A CACHED segment becomes the list this connection had remembered under its hash
   * (TS_ERR_KEYS_NOT_CACHED if none, or of another length); a list flagged CACHE_KEYS is
   * remembered (a copy: the decoded list lives in the node's scratch), whatever the request then
   * does, so both ends' caches change in the same order.
   */
  resolve(conn: Conn, f: Frame): void {
    const k = f.keys;
    if (k.kind === 'cached') {
      const keys = this.caches.get(conn)?.use(k.hash, k.n);
      if (keys === undefined)
        throw new TabshardError('TS_ERR_KEYS_NOT_CACHED', `no cached list ${k.hash.toString(16)} of ${k.n} keys`);
      f.keys = { kind: 'list', keys };
    } else if (f.flags & Flag.CACHE_KEYS && k.kind === 'list') {
      const hash = keyListHash(k.keys);
      if (hash === null) return;
      let cache = this.caches.get(conn);
      if (!cache) {
        cache = new KeyListCache();
        this.caches.set(conn, cache);
      }
      cache.add(hash, k.keys.length, k.keys.slice());
    }
  }

  /** Forgets a closed connection's lists. */
  drop(conn: Conn): void {
    this.caches.delete(conn);
  }
}
