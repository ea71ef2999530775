/**
 * Read-ahead for a worker's shards: a shard is loaded once (network, IndexedDB) and kept, and
 * asking for shard i starts loading shard i + 1 (wrapping) in the background, so the next task
 * rarely waits for its data: a worker that runs shards in turn finds each one already there.
 */

/** `load` memoised by index, loading the index after each one asked for; a failed load is tried again next time. */
export function readAhead<T>(load: (index: number) => Promise<T>, count: number): (index: number) => Promise<T> {
  const loads = new Map<number, Promise<T>>();
  const get = (index: number): Promise<T> => {
    let p = loads.get(index);
    if (p === undefined) {
      p = load(index);
      loads.set(index, p);
      p.catch(() => loads.delete(index));
    }
    return p;
  };
  return (index) => {
    const p = get(index);
    if (count > 1) get((index + 1) % count).catch(() => {}); // its failure shows when it is asked for
    return p;
  };
}
