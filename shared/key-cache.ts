/**
 * Key-list caching (Li et al. §4.2; PROTOCOL.md §5.2): a worker sends a key list once, flagged
 * CACHE_KEYS, and afterwards only its 64-bit hash (key kind CACHED). Both ends of a connection
 * keep the same bounded least-recently-used set of lists — the node the keys themselves, the
 * worker their hashes and lengths — updated frame by frame in connection order (a list is added
 * when a CACHE_KEYS frame is sent / decoded, marked used when a CACHED frame is sent / resolved),
 * so the worker knows what the node still has; a miss (TS_ERR_KEYS_NOT_CACHED) costs one resend.
 *
 * The hash is XXH64 with seed 0 of the keys as little-endian IEEE-754 binary64 values (8 bytes
 * per key), computed by xxhash-wasm (WebAssembly: Node and browsers alike).
 */
import xxhash from 'xxhash-wasm';

/** Lists and keys a cache holds per connection (the node may hold more, never less). */
export const CACHE_MAX_LISTS = 256;
export const CACHE_MAX_KEYS = 2 * 1024 * 1024;
/** Shorter lists are sent as they are: hashing and a possible miss would cost more than their bytes. */
export const CACHE_MIN_KEYS = 64;

let h64: ((bytes: Uint8Array) => bigint) | null = null;
/** Resolves once hashing is available (it loads at import; until then nothing is cached). */
export const keyHashReady: Promise<void> = xxhash().then(
  (api) => {
    h64 = api.h64Raw;
  },
  () => {},
);

/** The list's cache hash, or null while the hasher is loading (or for lists too short to cache). */
export function keyListHash(keys: Float64Array): bigint | null {
  if (h64 === null || keys.length < CACHE_MIN_KEYS) return null;
  return h64(new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength));
}

/** A bounded LRU of key lists by hash, with whatever each end keeps per list (`T`). */
export class KeyListCache<T> {
  private readonly lists = new Map<bigint, { n: number; value: T }>();
  private keys = 0;

  constructor(
    readonly maxLists = CACHE_MAX_LISTS,
    readonly maxKeys = CACHE_MAX_KEYS,
  ) {}

  /** The entry for `hash` if it holds `n` keys (and marks it most recently used), else undefined. */
  use(hash: bigint, n: number): T | undefined {
    const e = this.lists.get(hash);
    if (e === undefined || e.n !== n) return undefined;
    this.lists.delete(hash);
    this.lists.set(hash, e);
    return e.value;
  }

  /** Remembers a list of `n` keys (evicting the least recently used past the bounds); false if it can never fit. */
  add(hash: bigint, n: number, value: T): boolean {
    if (n > this.maxKeys) return false;
    const old = this.lists.get(hash);
    if (old) {
      this.keys -= old.n;
      this.lists.delete(hash);
    }
    this.lists.set(hash, { n, value });
    this.keys += n;
    while (this.keys > this.maxKeys || this.lists.size > this.maxLists) {
      const [oldest, e] = this.lists.entries().next().value as [bigint, { n: number }];
      this.lists.delete(oldest);
      this.keys -= e.n;
    }
    return true;
  }

  /** Forgets one list (the other end did not have it). */
  forget(hash: bigint): void {
    const e = this.lists.get(hash);
    if (!e) return;
    this.lists.delete(hash);
    this.keys -= e.n;
  }

  get size(): number {
    return this.lists.size;
  }
}
