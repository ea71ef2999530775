/**
 * Time as a dependency (STYLE practice 2): the scheduler's leases and the worker's heartbeats
 * read the time and set timers through a `Clock`, so tests drive them with `ManualClock`
 * deterministically instead of sleeping. (Not to be confused with `clock.ts`, the range vector
 * clocks of the parameter server.)
 */

/** An opaque timer handle, given back to `clearTimeout`. */
export type TimerId = unknown;

export interface Clock {
  /** Milliseconds; only differences between readings mean anything. */
  now(): number;
  /** Runs `fn` once, `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown or already fired timers are ignored. */
  clearTimeout(id: TimerId): void;
}

/** The platform's clock (Node and browser). */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id as ReturnType<typeof globalThis.setTimeout>),
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, ms);
  });
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to. `advance` runs every timer that falls due, each at its
 * own due time (so `now()` inside a callback reads that time), in (due time, creation) order,
 * including timers set by those callbacks if they fall due within the advanced span.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.timers.delete(id as number);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.size;
  }

  /** Due time of the next timer, or null when none is set. */
  nextAt(): number | null {
    const n = this.first();
    return n ? n[1].at : null;
  }

  /** Moves time forward by `ms`, firing due timers on the way. */
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }

  /** Moves time forward to `to` (never backwards), firing due timers on the way. */
  advanceTo(to: number): void {
    for (;;) {
      const n = this.first();
      if (!n || n[1].at > to) break;
      this.timers.delete(n[0]);
      this.t = Math.max(this.t, n[1].at);
      n[1].fn();
    }
    this.t = Math.max(this.t, to);
  }

  private first(): [number, ManualTimer] | null {
    let best: [number, ManualTimer] | null = null;
    for (const e of this.timers) {
      const v = e[1];
      if (!best || v.at < best[1].at || (v.at === best[1].at && v.seq < best[1].seq)) best = e;
    }
    return best;
  }
}
