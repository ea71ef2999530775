/**
 * Buffers for the hot paths, so that encoding a frame does not allocate (and page-fault in) a
 * fresh array every time.
 *
 * - `BufferPool` lends large buffers (megabytes of keys or values) that come back through the
 *   transport's `onSent`: a lent buffer is never handed out again before it is given back.
 * - `smallBytes` carves small buffers (frame headers, acks) out of shared slabs, like Node's
 *   `Buffer.allocUnsafe`: nothing is reused, a slab is simply dropped once it is full, so a small
 *   buffer needs no release.
 */

/** Lends reusable ArrayBuffers of `minBytes` to `maxBytes`; keeps at most `keep` idle ones. */
export class BufferPool {
  private free: ArrayBuffer[] = [];
  /** Buffers currently lent (weak: a buffer whose send never completed is simply collected). */
  private readonly lent = new WeakSet<ArrayBuffer>();

  constructor(
    /** Smaller requests are not pooled (`take` returns a fresh array). */
    readonly minBytes = 64 * 1024,
    private readonly keep = 4,
    /** Larger requests are not pooled either, so idle memory stays below keep × maxBytes. */
    readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  /** A zeroed-or-not view of exactly `n` bytes; pass it (or any view of it) to `give` when done. */
  take(n: number): Uint8Array {
    if (n < this.minBytes || n > this.maxBytes) return new Uint8Array(n);
    let best = -1;
    for (let i = 0; i < this.free.length; i++)
      if (this.free[i].byteLength >= n && (best < 0 || this.free[i].byteLength < this.free[best].byteLength)) best = i;
    let buf: ArrayBuffer;
    if (best >= 0) {
      buf = this.free[best];
      this.free[best] = this.free[this.free.length - 1];
      this.free.pop();
    } else buf = new ArrayBuffer(n);
    this.lent.add(buf);
    return new Uint8Array(buf, 0, n);
  }

  /**
   * Returns a buffer that `take` lent. Anything else (a small or foreign buffer, one given back
   * twice) is ignored, so a caller may give back whatever `take` returned without checking.
   */
  give(view: ArrayBufferView): void {
    const buf = view.buffer as ArrayBuffer;
    if (!this.lent.has(buf)) return;
    this.lent.delete(buf);
    if (this.free.length < this.keep) this.free.push(buf);
    else {
      // Keep the largest buffers: they are the expensive ones to fault in again.
      let min = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].byteLength < this.free[min].byteLength) min = i;
      if (this.free[min].byteLength < buf.byteLength) this.free[min] = buf;
    }
  }

  /** Number of idle buffers (for tests). */
  get idle(): number {
    return this.free.length;
  }
}

const SLAB_BYTES = 64 * 1024;
const SMALL_MAX = 4096;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/**
 * A zero-filled array of `n` bytes, 8-byte aligned, carved from a shared slab when small (never
 * reused, so it needs no release; the slab lives while any of its arrays does).
 */
export function smallBytes(n: number): Uint8Array {
  if (n > SMALL_MAX) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return out;
}
