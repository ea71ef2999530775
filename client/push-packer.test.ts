import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FloatKind } from '../shared/protocol/values.ts';
import { createRng } from '../shared/rng.ts';
import type { NodePart } from '../shared/slicing.ts';
import { PushPacker, SKIP_AFTER_MISS } from './push-packer.ts';

const N = 4096;
const part: NodePart = { owner: 'n', keys: { kind: 'range', begin: 0, end: N }, runs: [{ at: 0, n: N }], n: N };
const rng = createRng(3);
const noise = Float32Array.from({ length: N }, () => rng.next() - 0.5);
const sparse = Float32Array.from({ length: N }, (_, i) => (i % 50 === 0 ? 1 : 0));

describe('push packer', () => {
  it('after a push that deflating did not shrink, sends the next pushes undeflated without trying', () => {
    const p = new PushPacker(1);
    assert.equal(p.pack(sparse, [part], 'f32', true)!.parts[0].kind, FloatKind.COMPRESSED);
    assert.equal(p.pack(noise, [part], 'f32', true)!.parts[0].kind, FloatKind.F32, 'noise does not shrink');
    for (let i = 0; i < SKIP_AFTER_MISS; i++)
      assert.equal(p.pack(sparse, [part], 'f32', true)!.parts[0].kind, FloatKind.F32, `push ${i} not tried`);
    assert.equal(p.pack(sparse, [part], 'f32', true)!.parts[0].kind, FloatKind.COMPRESSED, 'tried again');
  });

  it('leaves a plain float32 push alone, and quantises with feedback when asked', () => {
    const p = new PushPacker(1);
    assert.equal(p.pack(noise, [part], 'f32', false), null);
    const q = p.pack(noise, [part], 'q8', false)!;
    assert.equal(q.parts[0].kind, FloatKind.Q8);
    for (let i = 0; i < N; i++) assert.ok(Math.abs(q.sent[i] - noise[i]) <= 0.5 / 127 / 2 + 1e-7);
  });
});
