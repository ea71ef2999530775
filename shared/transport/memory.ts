/**
 * The in-memory transport: a seeded simulated network for deterministic tests.
 *
 * Deliveries run on a virtual clock, one per event-loop turn, in (virtual time, send order)
 * order, so the same seed and the same sends give the same interleaving on every run. Each
 * message gets a random delay; order within a connection is kept (as TCP would), while
 * messages on different connections overtake each other. A connection may be dropped at
 * random (`dropRate`) or on purpose (`drop`), losing whatever it still had in flight.
 */
import { TabshardError } from '../errors.ts';
import { createRng, type Rng } from '../rng.ts';
import { type Conn, checkMessageSize, concatParts, DEFAULT_MAX_MESSAGE, type Dialer, type Listener } from './types.ts';

export interface MemoryNetworkOptions {
  seed?: number;
  /** Virtual delay per message is uniform in [0, maxDelay). */
  maxDelay?: number;
  /** Probability that sending a message drops its connection instead. */
  dropRate?: number;
  maxMessage?: number;
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export class MemoryNetwork {
  private readonly rng: Rng;
  private readonly queue: Event[] = [];
  private readonly listeners = new Map<string, MemoryListener>();
  private now = 0;
  private seq = 0;
  private pumping = false;
  readonly maxMessage: number;
  dropRate: number;
  readonly maxDelay: number;
  /** Every live connection end, for fault injection. */
  readonly conns = new Set<MemoryConn>();

  constructor(opts: MemoryNetworkOptions = {}) {
    this.rng = createRng(opts.seed ?? 1);
    this.maxDelay = opts.maxDelay ?? 10;
    this.dropRate = opts.dropRate ?? 0;
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  }

  listen(name: string): Listener {
    if (this.listeners.has(name)) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `memory address ${name} in use`);
    const l = new MemoryListener(this, name);
    this.listeners.set(name, l);
    return l;
  }

  dialer(): Dialer {
    return { kind: 'memory', dial: (address) => this.dial(address) };
  }

  /** Drops one connection (both ends see TS_ERR_TRANSPORT_CLOSED). */
  drop(conn: Conn): void {
    (conn as MemoryConn).close(new TabshardError('TS_ERR_TRANSPORT_CLOSED', 'dropped by the simulated network'));
  }

  /** @internal */
  unlisten(name: string): void {
    this.listeners.delete(name);
  }

  /** @internal Draws the delivery time of the next message on a connection. */
  nextAt(after: number): number {
    return Math.max(after, this.now + this.rng.next() * this.maxDelay);
  }

  /** @internal */
  shouldDrop(): boolean {
    return this.dropRate > 0 && this.rng.next() < this.dropRate;
  }

  /** @internal */
  schedule(at: number, run: () => void): void {
    const ev = { at, seq: this.seq++, run };
    // Binary insertion keeps the queue ordered by (at, seq); queues here are short.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.queue[mid];
      if (q.at < at || (q.at === at && q.seq < ev.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, ev);
    if (!this.pumping) {
      this.pumping = true;
      setImmediate(() => this.pump());
    }
  }

  private pump(): void {
    const ev = this.queue.shift();
    if (ev) {
      this.now = ev.at;
      ev.run();
    }
    if (this.queue.length > 0) setImmediate(() => this.pump());
    else this.pumping = false;
  }

  private dial(address: string): Promise<Conn> {
    const name = address.replace(/^memory:\/\//, '');
    return new Promise((resolve, reject) => {
      this.schedule(this.nextAt(this.now), () => {
        const l = this.listeners.get(name);
        if (!l) return reject(new TabshardError('TS_ERR_CONNECT_FAILED', `nothing listens on ${address}`));
        const a = new MemoryConn(this, `memory://${name}`);
        const b = new MemoryConn(this, 'memory://dialer');
        a.peer = b;
        b.peer = a;
        l.onconnection?.(b);
        resolve(a);
      });
    });
  }
}

class MemoryListener implements Listener {
  readonly kind = 'memory' as const;
  readonly address: string;
  onconnection: ((conn: Conn) => void) | null = null;
  constructor(
    private readonly net: MemoryNetwork,
    private readonly name: string,
  ) {
    this.address = `memory://${name}`;
  }
  async close(): Promise<void> {
    this.net.unlisten(this.name);
  }
}

export class MemoryConn implements Conn {
  readonly kind = 'memory' as const;
  peer: MemoryConn | null = null;
  onmessage: ((msg: Uint8Array) => void) | null = null;
  onclose: ((err?: TabshardError) => void) | null = null;
  private isClosed = false;
  private lastAt = 0;

  constructor(
    private readonly net: MemoryNetwork,
    readonly remote: string,
  ) {
    net.conns.add(this);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(parts: readonly Uint8Array[], onSent?: () => void): void {
    checkMessageSize(parts, this.net.maxMessage);
    if (this.isClosed) return;
    if (this.net.shouldDrop()) {
      this.net.drop(this);
      return;
    }
    const msg = concatParts(parts);
    if (onSent) queueMicrotask(onSent);
    const peer = this.peer;
    this.lastAt = this.net.nextAt(this.lastAt);
    this.net.schedule(this.lastAt, () => {
      if (!this.isClosed && peer && !peer.isClosed) peer.onmessage?.(msg);
    });
  }

  close(err?: TabshardError): void {
    if (this.isClosed) return;
    this.shut(err);
    const peer = this.peer;
    if (peer) queueMicrotask(() => peer.shut(err ?? new TabshardError('TS_ERR_TRANSPORT_CLOSED', 'closed by peer')));
  }

  private shut(err?: TabshardError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.net.conns.delete(this);
    this.onclose?.(err);
  }
}
