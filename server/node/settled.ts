/**
 * STATS `settled` (PROTOCOL.md §6): a STATS request from an operator's connection may ask to be
 * answered once the node has no copy (MIGRATE) or no forward (FORWARD) pending, or after `ms`.
 * The server manager's join and drain wait on it instead of polling, so they go on the moment
 * the last copy or forward is acknowledged.
 */
import { TabshardError } from '../../shared/errors.ts';
import { decodeJson } from '../../shared/protocol/control.ts';
import type { Frame } from '../../shared/protocol/frame.ts';

/** What a STATS request may wait for (PROTOCOL.md §6 STATS `settled`). */
export type Settled = 'copies' | 'forwards';

/** The longest a STATS `settled` wait lasts, and how long when the request names no `ms`. */
export const SETTLED_MAX_MS = 10_000;
const SETTLED_DEFAULT_MS = 1000;

/**
 * A STATS request's wait, if it asks for one: body `{"settled":"copies"|"forwards","ms":N}`. A
 * body that is not a JSON object, or has no `settled`, asks for none (STATS takes any body); a
 * `settled` or `ms` out of its domain is TS_ERR_FRAME_MALFORMED.
 */
export function parseSettled(f: Frame): { settled: Settled; ms: number } | null {
  let o: unknown;
  try {
    o = decodeJson(f);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o) || !('settled' in o)) return null;
  const { settled, ms = SETTLED_DEFAULT_MS } = o as { settled: unknown; ms?: unknown };
  if (settled !== 'copies' && settled !== 'forwards')
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', 'STATS settled: "copies" or "forwards"');
  if (!Number.isInteger(ms) || (ms as number) < 0 || (ms as number) > SETTLED_MAX_MS)
    throw new TabshardError('TS_ERR_FRAME_MALFORMED', `STATS ms: an integer in [0, ${SETTLED_MAX_MS}]`);
  return { settled, ms: ms as number };
}

/** The open `settled` waits of one node, answered when their kind has nothing pending. */
export class Settling {
  private waits: Array<{ what: Settled; resolve: () => void; timer: ReturnType<typeof setTimeout> }> = [];

  constructor(private readonly pending: (what: Settled) => number) {}

  wait(what: Settled, ms: number): Promise<void> {
    if (this.pending(what) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        what,
        resolve,
        timer: setTimeout(() => {
          this.waits = this.waits.filter((x) => x !== w);
          resolve();
        }, ms),
      };
      w.timer.unref?.();
      this.waits.push(w);
    });
  }

  /** Answers the waits whose kind has nothing pending now (called after every decrement). */
  wake(): void {
    if (this.waits.length === 0) return;
    this.waits = this.waits.filter((w) => {
      if (this.pending(w.what) > 0) return true;
      clearTimeout(w.timer);
      w.resolve();
      return false;
    });
  }

  close(): void {
    for (const w of this.waits.splice(0)) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }
}
