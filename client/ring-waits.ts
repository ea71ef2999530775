/**
 * `Worker.awaitRing`: calls waiting for a ring newer than a version, and the timer that asks the
 * seed for the ring every RING_POLL_MS while any waits (one ask at a time, failures ignored). A
 * ring pushed by a node settles them as soon as the worker installs it.
 */

/** While something awaits a newer ring, the seed is asked this often. */
const RING_POLL_MS = 150;

type Timer = ReturnType<typeof setTimeout>;

/** An `awaitRing` call waiting for a ring newer than `after`. */
interface RingWaiter {
  after: number;
  settle(newer: boolean): void;
}

export class RingWaits {
  private readonly waiters = new Set<RingWaiter>();
  private poll: Timer | null = null;
  private closed = false;

  /** `ask` fetches the ring from the seed and installs it (errors are its own to swallow). */
  constructor(private readonly ask: () => Promise<void>) {}

  /** Resolves true once `settle` sees a version above `after`, false after `ms` or at `close`. */
  wait(after: number, ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      // The deadline holds the process open, like RpcPeer's sweeper while a request is pending.
      const timer = setTimeout(() => waiter.settle(false), ms);
      const waiter: RingWaiter = {
        after,
        settle: (newer) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(newer);
        },
      };
      this.waiters.add(waiter);
      this.schedule();
    });
  }

  /** A ring of `version` was installed: the waits for an older one resolve true. */
  settle(version: number): void {
    for (const w of this.waiters) if (version > w.after) w.settle(true);
  }

  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.settle(false);
    if (this.poll !== null) clearTimeout(this.poll);
    this.poll = null;
  }

  private schedule(): void {
    if (this.poll !== null) return;
    this.poll = setTimeout(() => {
      this.poll = null;
      if (this.waiters.size === 0 || this.closed) return;
      this.ask().then(() => {
        if (this.waiters.size > 0) this.schedule();
      });
    }, RING_POLL_MS);
    // Node's timers can stop holding the process open; browsers' numeric timers cannot (and need not).
    (this.poll as { unref?: () => void }).unref?.();
  }
}
