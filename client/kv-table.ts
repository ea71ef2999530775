/**
 * One table of a job as a worker sees it (ps-lite's KVWorker): `push` and `pull` slice a request
 * by the ring into ONE frame per owning node (a node's keys may span many of its ranges; the
 * frame carries them all: a list, or several ranges), send each to its owner and reassemble the
 * replies. A frame is encoded once, when the request is made (its keys checked while they are
 * encoded), and again only to resend it over a new connection after a lost one.
 *
 * After a failover (docs/workers.md, "When the ring changes") a frame whose keys moved — refused
 * with TS_ERR_NOT_OWNER, or lost with a node that left the ring — is re-sliced under the current
 * ring, and its pieces go to the new owners: a push's pieces under exactly the failed frame's
 * task stamp (so a node holding the update already, replicated from the dead one, acknowledges
 * it as a duplicate), a pull's replies into the same output. Pieces carry their keys in full.
 *
 * Pull replies are scattered into the result as each one arrives: reply frames may be views of
 * a buffer the transport reuses (Conn.transientMessages), so nothing keeps them.
 */
import { TabshardError, toTabshardError } from '../shared/errors.ts';
import { type KeyListCache, keyListHash } from '../shared/key-cache.ts';
import { checkSortedKeys } from '../shared/keys.ts';
import type { BufferPool } from '../shared/pool.ts';
import { type EncodeOptions, Flag, HEADER_BYTES, setRequestId, type TaskStamp } from '../shared/protocol/frame.ts';
import { asPullReply, encodePull, encodePush, type WireKeys } from '../shared/protocol/kv.ts';
import type { ValueCodec } from '../shared/protocol/values.ts';
import type { OwnedRange, Ring, TableShape } from '../shared/ring.ts';
import {
  type Keys,
  type NodePart,
  nestRuns,
  partValues,
  resliceKeys,
  scatterPart,
  sliceByNode,
} from '../shared/slicing.ts';
import type { TableSpec } from '../shared/table.ts';
import { PushPacker } from './push-packer.ts';
import { KvSubscription, type Subscription, type SubscriptionHost } from './subscription.ts';

/** How often one part of a request may be re-sliced (a piece of a piece…) before the request fails. */
const MAX_RESLICES = 5;

/** What a frame of a push or pull carries besides its keys (and, for a push, its stamp and values). */
interface FrameBase {
  requestId: number;
  job: number;
  table: number;
  clock: number;
  /** A pull's asks (HALF, COMPRESS), kept by the pieces of a re-sliced frame. */
  flags?: number;
}

/** A scheduler task and the attempt of its lease: what a push is stamped with. */
export interface TaskRef {
  task: number;
  attempt: number;
  /** The worker id the scheduler gave the lease's session (default: the Worker's own id). */
  worker?: number;
}

/** What a table needs of its worker (client/worker.ts implements it). */
export interface TableHost extends SubscriptionHost {
  /** Lends the heads of long key lists; they come back through the transport's onSent. */
  readonly pool: BufferPool;
  /** Stamps for the `n` frames of a push of `task` (see Worker.stamps). */
  stamps(n: number, task?: TaskRef, take?: boolean): TaskStamp[];
  /** Registers a request and returns its timestamp (`after`: an earlier request it waits for). */
  track(run: () => Promise<Float32Array | undefined>, after?: number): number;
  countPush(parts: Uint8Array[]): Uint8Array[];
  /** Keeps the receipt a node's ACK carried for a task push (PROTOCOL.md §6.3; `body` is transient). */
  receipt(stamp: TaskStamp, body: Uint8Array): void;
  countPulled(bytes: number): void;
  /** The worker's mirror of the key lists `node`'s connection holds. */
  keyCache(node: string): KeyListCache<true>;
  readonly cachesKeys: boolean;
}

/** Options of a push. */
export interface PushOptions {
  clock?: number;
  /** Wait for this earlier request before sending (ps-lite's dependency). */
  after?: number;
  /** The task to stamp the push with (default: the worker's `setTask` one). */
  task?: TaskRef;
  /** How the values travel (default f32); f16 and q8 keep what they lose for the next push (ErrorFeedback). */
  codec?: ValueCodec;
  /** Deflate each frame's values where that makes them at least 1/8 smaller (PROTOCOL.md §3.4). */
  compress?: boolean;
  /** The significantly-modified filter: values whose accumulated change is below this go as 0, kept for later. */
  threshold?: number;
  /** The same filter relative to each node part: below this fraction of its root mean square. */
  thresholdRms?: number;
}

/** Options of a pull. */
export interface PullOptions {
  /** Where the values go (n·d floats); a fresh array when absent. Partly written if the pull fails. */
  out?: Float32Array;
  clock?: number;
  after?: number;
  /** Ask the nodes for F16 values (flag HALF, PROTOCOL.md §3.5); f32 in memory all the same. */
  half?: boolean;
  /** Ask the nodes to deflate the reply's values where it pays (flag COMPRESS). */
  compress?: boolean;
}

export class KvTable {
  private readonly shape: TableShape;
  /** The table's ranges under the ring last used (looked up again when the ring changes). */
  private layout: { ring: Ring; ranges: readonly OwnedRange[] } | null = null;
  /** Packs lossy or deflated pushes (made on the first push). */
  private packer: PushPacker | null = null;

  constructor(
    private readonly w: TableHost,
    readonly spec: TableSpec,
  ) {
    this.shape = { id: spec.id, keySpace: spec.keySpace, valueLength: spec.valueLength };
  }

  /**
   * Pushes `values` (d per key) for `keys`; returns a timestamp at once. Bad keys or a wrong
   * value count throw here, before anything is sent or stamped.
   */
  push(keys: Keys, values: Float32Array, opts: PushOptions = {}): number {
    const d = this.spec.valueLength;
    const { parts, n, check } = this.slice(keys);
    if (values.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `${values.length} values for ${n} keys x ${d}`);
    const stamps = this.w.stamps(parts.length, opts.task, false);
    const base = { requestId: 0, job: this.w.job, table: this.spec.id, clock: opts.clock ?? 0 };
    const codec = opts.codec ?? 'f32';
    // Keys are checked before residuals change (the lone-list fast path checks them while encoding).
    const filtered = opts.threshold || opts.thresholdRms;
    if ((codec !== 'f32' || opts.compress || filtered) && check && keys instanceof Float64Array)
      checkSortedKeys(keys, this.spec.keySpace);
    this.packer ??= new PushPacker(d);
    const filter = { threshold: opts.threshold, rms: opts.thresholdRms };
    const packed = this.packer.pack(values, parts, codec, opts.compress === true, filter);
    // A re-sliced piece carries the values the nodes read of the frame it came from (float32).
    if (packed) values = packed.sent;
    const frames = this.frames(parts, check, opts.compress === true, (i, keys, flags, options) =>
      encodePush(
        { ...base, task: stamps[i], keys, flags, values: packed ? packed.parts[i] : partValues(values, parts[i], d) },
        options,
      ),
    );
    this.w.stamps(parts.length, opts.task);
    const version = this.layout!.ring.version;
    return this.w.track(
      () =>
        new Promise<undefined>((resolve, reject) => {
          if (parts.length === 0) return resolve(undefined);
          const o = new Outstanding(parts.length, () => resolve(undefined), reject);
          for (let i = 0; i < parts.length; i++)
            this.sendPush(o, parts[i], version, (requestId) => this.w.countPush(frames.build(i, requestId)), {
              base,
              stamp: stamps[i],
              values,
              depth: 0,
            });
        }),
      opts.after,
    );
  }

  /** Sends one frame of a push; a frame whose keys moved is re-sliced (`reslicePush`). */
  private sendPush(o: Outstanding, part: NodePart, version: number, build: Build, p: PushPart): void {
    this.w.sendSlice(
      part.owner,
      build,
      (err, f) => {
        if (err) return o.fail(err);
        if (f?.body && p.stamp.task !== 0) this.w.receipt(p.stamp, f.body);
        o.one();
      },
      version,
      (err) => this.reslicePush(o, part, err, p),
    );
  }

  /** Sends a push frame's pieces to their owners under the current ring, with the frame's own stamp. */
  private reslicePush(o: Outstanding, part: NodePart, err: TabshardError, p: PushPart): void {
    const pieces = this.pieces(o, part, err, p.depth);
    if (pieces === null) return;
    const d = this.spec.valueLength;
    const pool = this.w.pool;
    const version = this.w.currentRing.version;
    const next: PushPart = { ...p, depth: p.depth + 1 };
    for (const piece of pieces)
      this.sendPush(
        o,
        piece,
        version,
        (requestId) =>
          this.w.countPush(
            encodePush(
              {
                ...p.base,
                requestId,
                task: p.stamp,
                keys: piece.keys,
                values: partValues(p.values, piece, d),
                flags: Flag.RESLICED,
              },
              { pool },
            ),
          ),
        next,
      );
  }

  /**
   * The pieces of a part whose keys moved, under the current ring, as parts of the request (their
   * runs index the request's keys); the request now waits for them instead. Null, and the
   * request has failed (with `err`, the part's last error), once a part was re-sliced
   * MAX_RESLICES times, or when the request failed already.
   */
  private pieces(o: Outstanding, part: NodePart, err: TabshardError, depth: number): NodePart[] | null {
    if (o.failed) return null;
    if (depth >= MAX_RESLICES) {
      o.fail(err);
      return null;
    }
    let pieces: NodePart[];
    try {
      pieces = resliceKeys(this.w.currentRing, this.shape, part.keys).map((p) => ({
        ...p,
        runs: nestRuns(part.runs, p.runs),
      }));
    } catch (e) {
      o.fail(toTabshardError(e));
      return null;
    }
    o.split(pieces.length);
    return pieces;
  }

  /** Pulls the values of `keys` (into `out` when given); `wait(ts)` resolves with them. */
  pull(keys: Keys, opts: PullOptions = {}): number {
    const d = this.spec.valueLength;
    const { parts, n, check } = this.slice(keys);
    if (opts.out && opts.out.length !== n * d)
      throw new TabshardError('TS_ERR_VALUE_LENGTH', `out holds ${opts.out.length}, needs ${n * d}`);
    const asks = (opts.half ? Flag.HALF : 0) | (opts.compress ? Flag.COMPRESS : 0);
    const base = { requestId: 0, job: this.w.job, table: this.spec.id, clock: opts.clock ?? 0, flags: asks };
    const frames = this.frames(parts, check, opts.compress === true, (_i, keys, flags, options) =>
      encodePull({ ...base, keys, flags: flags | asks }, options),
    );
    const version = this.layout!.ring.version;
    return this.w.track(
      () =>
        new Promise<Float32Array>((resolve, reject) => {
          const out = opts.out ?? new Float32Array(n * d);
          if (parts.length === 0) return resolve(out);
          const o = new Outstanding(parts.length, () => resolve(out), reject);
          for (let i = 0; i < parts.length; i++)
            this.sendPull(
              o,
              parts[i],
              version,
              (requestId) => this.w.countRequest(frames.build(i, requestId)),
              base,
              out,
              0,
            );
        }),
      opts.after,
    );
  }

  /** Sends one frame of a pull and scatters its reply into `out`; a frame whose keys moved is re-sliced. */
  private sendPull(
    o: Outstanding,
    part: NodePart,
    version: number,
    build: Build,
    base: FrameBase,
    out: Float32Array,
    depth: number,
  ): void {
    const d = this.spec.valueLength;
    this.w.sendSlice(
      part.owner,
      build,
      (err, f) => {
        if (o.failed) return;
        const v = err ? null : asPullReply(f!);
        if (v) this.w.countPulled(HEADER_BYTES + (f!.valueBytes ?? v.byteLength));
        if (v === null || v.length !== part.n * d)
          return o.fail(err ?? new TabshardError('TS_ERR_VALUE_LENGTH', `reply of ${v!.length} values`));
        scatterPart(v, part, d, out);
        o.one();
      },
      version,
      (err) => {
        const pieces = this.pieces(o, part, err, depth);
        if (pieces === null) return;
        const pool = this.w.pool;
        const now = this.w.currentRing.version;
        for (const piece of pieces)
          this.sendPull(
            o,
            piece,
            now,
            (requestId) => this.w.countRequest(encodePull({ ...base, requestId, keys: piece.keys }, { pool })),
            base,
            out,
            depth + 1,
          );
      },
    );
  }

  /**
   * Subscribes to the values of `keys` (eager SSP): every node that owns some of them publishes
   * their current values whenever the job's slowest clock advances (ServerManager.publish), and
   * once at once when the job has published a clock before. Like a pull, one SUBSCRIBE per node.
   * Over a lost connection the worker subscribes again.
   */
  subscribe(keys: Keys, asks: { half?: boolean; compress?: boolean } = {}): Subscription {
    const own: Keys = keys instanceof Float64Array ? keys.slice() : { begin: keys.begin, end: keys.end };
    const { parts, n } = this.slice(own);
    return new KvSubscription(
      this.w,
      this.spec,
      own,
      n,
      parts.map((p) => ({ node: p.owner, keys: p.keys, runs: p.runs })),
      asks,
    );
  }

  /**
   * The request's parts per node, its key count, and whether its lone list part is to be checked
   * while it is encoded. On a table one node holds whole, a key list goes as it is and is checked
   * while encoded (one pass over the keys, not two); on a table spread over nodes it is checked
   * first, then gathered per node.
   */
  private slice(keys: Keys): { parts: NodePart[]; n: number; check: boolean } {
    const ring = this.w.currentRing;
    if (this.layout?.ring !== ring) this.layout = { ring, ranges: ring.ranges(this.shape) };
    const ranges = this.layout.ranges;
    if (keys instanceof Float64Array) {
      const n = keys.length;
      if (n === 0) return { parts: [], n, check: false };
      if (ranges.length === 1)
        return {
          parts: [{ owner: ranges[0].owner, keys: { kind: 'list', keys }, runs: [{ at: 0, n }], n }],
          n,
          check: true,
        };
      checkSortedKeys(keys, this.spec.keySpace);
      return { parts: sliceByNode(ring, this.shape, keys), n, check: false };
    }
    const { begin, end } = keys;
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > this.spec.keySpace)
      throw new TabshardError('TS_ERR_KEY_OUT_OF_RANGE', `range [${begin}, ${end})`);
    return { parts: sliceByNode(ring, this.shape, keys), n: end - begin, check: false };
  }

  /**
   * The frames of a request's parts. Each is encoded now (so bad keys throw here) and again only
   * for a resend. Key caching (PROTOCOL.md §5.2): a key list long enough to cache goes by its
   * hash when the node's open connection holds it, else in full with CACHE_KEYS (and the
   * worker's mirror of that connection's cache records it, as the node will); a resend (a new
   * connection, or TS_ERR_KEYS_NOT_CACHED) always carries the list in full. A lone list part of
   * a table one node holds whole is checked while it is encoded (`check`). With `deflateKeys`, a
   * list sent in full is deflated where that pays (key kind DEFLATED).
   */
  private frames(
    parts: NodePart[],
    check: boolean,
    deflateKeys: boolean,
    encode: (i: number, keys: WireKeys, flags: number, opts: EncodeOptions) => Uint8Array[],
  ): { build(i: number, requestId: number): Uint8Array[] } {
    const pool = this.w.pool;
    const hashes = parts.map((p) => (p.keys.kind === 'list' && this.w.cachesKeys ? keyListHash(p.keys.keys) : null));
    const first: Array<Uint8Array[] | null> = [];
    try {
      for (let i = 0; i < parts.length; i++) {
        const { owner, n, keys } = parts[i];
        const hash = hashes[i];
        const cache = hash === null ? null : this.w.keyCache(owner);
        if (hash !== null && cache!.use(hash, n)) {
          first.push(encode(i, { kind: 'cached', hash, n }, 0, {}));
          continue;
        }
        const options = check ? { pool, keySpace: this.spec.keySpace, deflateKeys } : { pool, deflateKeys };
        first.push(encode(i, keys, hash === null ? 0 : Flag.CACHE_KEYS, options));
        if (hash !== null) cache!.add(hash, n, true);
      }
    } catch (err) {
      for (const f of first) if (f) pool.give(f[0]);
      throw err;
    }
    const self = this;
    return {
      build(i, requestId) {
        const frame = first[i] ?? self.fullFrame(parts[i], hashes[i], i, deflateKeys, encode);
        first[i] = null;
        setRequestId(frame[0], requestId);
        return frame;
      },
    };
  }

  /** A part's frame with its list in full (flagged for caching when it has a hash): for a resend. */
  private fullFrame(
    part: NodePart,
    hash: bigint | null,
    i: number,
    deflateKeys: boolean,
    encode: (i: number, keys: WireKeys, flags: number, opts: EncodeOptions) => Uint8Array[],
  ): Uint8Array[] {
    if (hash !== null) this.w.keyCache(part.owner).add(hash, part.n, true);
    return encode(i, part.keys, hash === null ? 0 : Flag.CACHE_KEYS, { pool: this.w.pool, deflateKeys });
  }
}

type Build = (requestId: number) => Uint8Array[];

/** What a push frame's re-sliced pieces need: the frame's header fields and stamp, the request's values. */
interface PushPart {
  base: FrameBase;
  stamp: TaskStamp;
  values: Float32Array;
  /** How often the part has been re-sliced on its way here. */
  depth: number;
}

/** The frames of one request still to be answered: it resolves after the last, and fails at the first error. */
class Outstanding {
  failed = false;
  constructor(
    private left: number,
    private readonly resolve: () => void,
    private readonly reject: (e: TabshardError) => void,
  ) {}

  /** One frame answered. */
  one(): void {
    if (!this.failed && --this.left === 0) this.resolve();
  }

  fail(err: TabshardError): void {
    if (this.failed) return;
    this.failed = true;
    this.reject(err);
  }

  /** One frame was re-sliced into `pieces` frames, each to be answered instead. */
  split(pieces: number): void {
    this.left += pieces - 1;
  }
}
