/**
 * A table's push values as they go on the wire (PROTOCOL.md §3.4): each node's part packed once
 * per push — quantised with error feedback (F16, Q8; one residual stream per node part of a key
 * list, client/error-feedback.ts) and/or deflated — so a resend carries the
 * same bytes, with the values the nodes will read kept for a piece re-sliced after a failover.
 * Deflating values that do not shrink (float32 gradients rarely do) costs a worker time for
 * nothing: after a push none of whose parts paid, the next SKIP_AFTER_MISS pushes are not tried.
 */
import { keyListHash } from '../shared/key-cache.ts';
import type { KvKeys } from '../shared/protocol/kv.ts';
import {
  compressValues,
  concatFloats,
  FloatKind,
  type PackedValues,
  type ValueCodec,
} from '../shared/protocol/values.ts';
import { type NodePart, partValues, scatterPart } from '../shared/slicing.ts';
import { ErrorFeedback } from './error-feedback.ts';

/** Pushes sent undeflated after one whose deflating did not pay. */
export const SKIP_AFTER_MISS = 8;

export class PushPacker {
  /** What lossy pushes left out, per key (made on the first lossy push). */
  private feedback: ErrorFeedback | null = null;
  private skip = 0;

  constructor(private readonly d: number) {}

  /**
   * The parts' value segments and the values the nodes will read (request order), or null for
   * a plain float32 push. Keys must have been checked: residuals change here.
   */
  pack(
    values: Float32Array,
    parts: readonly NodePart[],
    codec: ValueCodec,
    compress: boolean,
    filter: { threshold?: number; rms?: number } = {},
  ): { parts: PackedValues[]; sent: Float32Array } | null {
    const filtering = (filter.threshold ?? 0) > 0 || (filter.rms ?? 0) > 0;
    if (codec === 'f32' && !compress && !filtering) return null;
    const feeds = codec !== 'f32' || filtering;
    const d = this.d;
    const deflate = compress && this.skip === 0;
    if (this.skip > 0) this.skip--;
    const sent = feeds ? new Float32Array(values.length) : values;
    if (feeds) this.feedback ??= new ErrorFeedback();
    let paid = false;
    const out = parts.map((part) => {
      const plain = concatValues(partValues(values, part, d));
      let p: PackedValues = { kind: FloatKind.F32, bytes: plain };
      if (feeds) {
        const floats = new Float32Array(plain.buffer, plain.byteOffset, plain.byteLength >> 2);
        const got = new Float32Array(floats.length);
        p = this.feedback!.pack(`${part.owner} ${streamOf(part.keys)}`, floats, codec, got, filter);
        scatterPart(got, part, d, sent);
      }
      if (!deflate) return p;
      const z = compressValues(p);
      if (z !== p) paid = true;
      return z;
    });
    if (deflate && !paid && parts.length > 0) this.skip = SKIP_AFTER_MISS;
    return { parts: out, sent };
  }
}

/** A part's keys as a stream name: a list by its hash, a range by its ends. */
function streamOf(keys: KvKeys): string {
  if (keys.kind === 'range') return `r${keys.begin}-${keys.end}`;
  const a = keys.kind === 'list' ? keys.keys : keys.bounds;
  const h = keyListHash(a);
  if (h !== null) return `${keys.kind[0]}${h.toString(16)}`;
  // Short lists (or before the hash has loaded): FNV-1a over the keys' low and high words.
  let x = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) {
    x = Math.imul(x ^ (a[i] % 4294967296), 16777619);
    x = Math.imul(x ^ Math.floor(a[i] / 4294967296), 16777619);
  }
  return `${keys.kind[0]}${a.length}.${(x >>> 0).toString(16)}`;
}

/** One array's bytes of a part's values (its runs' views, in order). */
function concatValues(views: Float32Array[]): Uint8Array {
  if (views.length === 1) return new Uint8Array(views[0].buffer, views[0].byteOffset, views[0].byteLength);
  return new Uint8Array(concatFloats(views).buffer);
}
