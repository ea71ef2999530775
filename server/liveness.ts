/**
 * Failure detection of the server group (docs/architecture.md §6): every `heartbeatMs` each live
 * member gets a HEARTBEAT on its control connection (one in flight per node). A node that has
 * not answered for twice the period is `suspect` (and `up` again at its next answer); one silent
 * for `deadAfterMs`, or whose connection is refused, is reported dead to the manager, which
 * installs the ring without it. Silence is judged only from ticks that came on time: when this
 * process was busy, the replies it has not read yet say nothing about the nodes.
 */
import type { ClusterInfo } from '../shared/cluster.ts';
import { toTabshardError } from '../shared/errors.ts';
import type { NodeState } from '../shared/status.ts';

export interface NodeEntry {
  id: string;
  /** Addresses by transport; `control` must be one of them (the manager dials it). */
  addresses: ClusterInfo['addresses'][string];
  control: string;
}

/** What the manager reports as it happens (the embedded cluster logs these). */
export type ManagerEvent =
  | { type: 'node-suspect'; node: string; silentMs: number }
  | { type: 'node-up'; node: string }
  | { type: 'node-dead'; node: string; reason: string; ring: number; ms: number }
  | {
      /** A join or drain finished: the ring version now installed and how long each step took. */
      type: 'node-joined' | 'node-drained';
      node: string;
      ring: number;
      ms: number;
      /** Copying ring installed and every copy acknowledged: the key ranges moved. */
      copyMs: number;
      /** Frozen ring installed to final ring installed: pushes of moving keys are refused meanwhile. */
      frozenMs: number;
    };

/** A node of the group as the manager tracks it. */
export interface Member {
  entry: NodeEntry;
  state: NodeState;
  /** performance.now() of the last answered probe. */
  lastSeen: number;
  probing: boolean;
}

/**
 * Default silence after which a node is declared dead. A live node's event loop can stall for
 * over a second when it shares a loaded machine with the browsers (`tabshard start` and four
 * training tabs on 2 cores: stalls of up to 1.1 s, the node runnable but not running), and at
 * 1000 ms healthy nodes were declared dead. A killed node is found at once either way: its
 * connection closes and nothing listens where it was.
 */
export const DEAD_AFTER_MS = 5000;

export interface LivenessHost {
  members(): Iterable<Member>;
  /** Sends a HEARTBEAT to the node and resolves with its answer. */
  heartbeat(node: string): Promise<unknown>;
  /** The node is dead (silent too long, or its connection refused). */
  dead(node: string, reason: string): void;
  event(e: ManagerEvent): void;
}

export class Liveness {
  private timer: ReturnType<typeof setInterval> | null = null;
  /** When the last tick ran (performance.now()). */
  private lastTick = 0;
  private readonly periodMs: number;
  private readonly deadAfterMs: number;

  constructor(
    private readonly host: LivenessHost,
    opts: { heartbeatMs?: number; deadAfterMs?: number } = {},
  ) {
    this.periodMs = opts.heartbeatMs ?? 200;
    this.deadAfterMs = opts.deadAfterMs ?? DEAD_AFTER_MS;
  }

  /** Whether probing runs (between `start` and `stop`). */
  get running(): boolean {
    return this.timer !== null;
  }

  /** Starts probing; every member counts as just seen. */
  start(): void {
    const now = performance.now();
    for (const m of this.host.members()) m.lastSeen = now;
    this.lastTick = now;
    this.timer = setInterval(() => this.tick(), this.periodMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Probes `m` now (a lost control connection is probed at once rather than at the next tick). */
  probe(m: Member): void {
    if (m.probing || m.state === 'dead' || !this.running) return;
    m.probing = true;
    this.host.heartbeat(m.entry.id).then(
      () => {
        m.probing = false;
        m.lastSeen = performance.now();
        if (m.state === 'suspect') {
          m.state = 'up';
          this.host.event({ type: 'node-up', node: m.entry.id });
        }
      },
      (err) => {
        m.probing = false;
        // Nothing listens where the node was: it is gone (a kill closes its sockets at once).
        if (toTabshardError(err).code === 'TS_ERR_CONNECT_FAILED') this.host.dead(m.entry.id, 'connection refused');
      },
    );
  }

  private tick(): void {
    const now = performance.now();
    const period = this.periodMs;
    const late = this.lastTick > 0 && now - this.lastTick > 2 * period;
    this.lastTick = now;
    const members = [...this.host.members()];
    if (late) for (const m of members) m.lastSeen = Math.max(m.lastSeen, now - period);
    for (const m of members) {
      if (m.state === 'dead') continue;
      const silent = now - m.lastSeen;
      if (silent > this.deadAfterMs) {
        this.host.dead(m.entry.id, `no heartbeat for ${Math.round(silent)} ms`);
        continue;
      }
      if (silent > 2 * period && m.state === 'up') {
        m.state = 'suspect';
        this.host.event({ type: 'node-suspect', node: m.entry.id, silentMs: Math.round(silent) });
      }
      if (!m.probing) this.probe(m);
    }
  }
}
