/**
 * sliceByNode: one part per owner, whatever the number of its ranges; every key of the request in
 * exactly one part, owned by that part's node (checked key by key against Ring.owner); values
 * gathered and scattered back to their places. resliceKeys/nestRuns: a part cut again under a
 * ring without one node, keys and values still in place.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ring, type TableShape } from './ring.ts';
import { createRng, randomSortedKeys } from './rng.ts';
import { nestRuns, partValues, resliceKeys, scatterPart, sliceByNode } from './slicing.ts';

const ring = new Ring(['n1', 'n2', 'n3'], { vnodes: 128 });
const shape: TableShape = { id: 1, keySpace: 2 ** 20, valueLength: 2 };

/** The keys a part's wire keys name, spelled out. */
function wireKeys(k: ReturnType<typeof sliceByNode>[number]['keys']): number[] {
  if (k.kind === 'list') return Array.from(k.keys);
  if (k.kind === 'range') return Array.from({ length: k.end - k.begin }, (_, i) => k.begin + i);
  const out: number[] = [];
  for (let i = 0; i < k.bounds.length; i += 2) for (let x = k.bounds[i]; x < k.bounds[i + 1]; x++) out.push(x);
  return out;
}

test('a key list goes to each owner in one part, keys in request order, each key once', () => {
  const rng = createRng(5);
  for (let trial = 0; trial < 30; trial++) {
    const keys = randomSortedKeys(rng, 1 + rng.int(20_000), shape.keySpace);
    const parts = sliceByNode(ring, shape, keys);
    assert.ok(parts.length <= 3);
    assert.equal(new Set(parts.map((p) => p.owner)).size, parts.length, 'one part per owner');
    const seen = new Uint8Array(keys.length);
    for (const p of parts) {
      const wire = wireKeys(p.keys);
      assert.equal(wire.length, p.n);
      let w = 0;
      for (const r of p.runs)
        for (let i = r.at; i < r.at + r.n; i++) {
          assert.equal(wire[w++], keys[i]);
          assert.equal(ring.owner(shape, keys[i]), p.owner);
          seen[i]++;
        }
      for (let i = 1; i < p.runs.length; i++)
        assert.ok(p.runs[i].at > p.runs[i - 1].at + p.runs[i - 1].n, 'runs not adjacent');
    }
    assert.ok(seen.every((x) => x === 1));
  }
});

test('a range spanning many ranges of a node travels as one RANGES part per node', () => {
  const parts = sliceByNode(ring, shape, { begin: 10, end: shape.keySpace - 3 });
  assert.equal(parts.length, 3);
  let total = 0;
  for (const p of parts) {
    assert.equal(p.keys.kind, 'ranges');
    for (const k of wireKeys(p.keys).filter((_, i) => i % 997 === 0)) assert.equal(ring.owner(shape, k), p.owner);
    total += p.n;
  }
  assert.equal(total, shape.keySpace - 13);
  const small = sliceByNode(ring, { id: 2, keySpace: 100, valueLength: 1 }, { begin: 3, end: 50 });
  assert.deepEqual(
    small.map((p) => p.keys),
    [{ kind: 'range', begin: 3, end: 50 }],
  );
});

test('push values are gathered as views and pull replies scattered back to their keys', () => {
  const keys = randomSortedKeys(createRng(9), 5000, shape.keySpace);
  const d = shape.valueLength;
  const values = Float32Array.from({ length: keys.length * d }, (_, i) => i);
  const out = new Float32Array(values.length);
  for (const p of sliceByNode(ring, shape, keys)) {
    const views = partValues(values, p, d);
    assert.ok(
      views.every((v) => v.buffer === values.buffer),
      'views, not copies',
    );
    const reply = new Float32Array(p.n * d);
    let o = 0;
    for (const v of views) {
      reply.set(v, o);
      o += v.length;
    }
    scatterPart(reply, p, d, out);
  }
  assert.deepEqual(out, values);
});

test("a part re-sliced under a ring without its node: pieces per new owner, runs in the part's key order", () => {
  const after = ring.withNodes(['n1', 'n3']);
  const rng = createRng(21);
  const own = ring.ranges(shape).find((r) => r.owner === 'n2' && r.begin > 0)!;
  const r2 = { begin: own.begin - 1, end: own.end + 1 };
  const requests = [
    randomSortedKeys(rng, 20_000, shape.keySpace),
    { begin: 10, end: shape.keySpace - 3 }, // a RANGES part per node
    r2, // n2's part is one RANGE
  ];
  let resliced = 0;
  for (const keys of requests) {
    for (const part of sliceByNode(ring, shape, keys)) {
      const partKeys = wireKeys(part.keys);
      const pieces = resliceKeys(after, shape, part.keys);
      if (part.owner !== 'n2') {
        // Removing a node moves only its keys: the part stays whole, with its node.
        assert.equal(pieces.length, 1);
        assert.equal(pieces[0].owner, part.owner);
        assert.deepEqual(wireKeys(pieces[0].keys), partKeys);
        assert.deepEqual(pieces[0].runs, [{ at: 0, n: part.n }]);
        continue;
      }
      resliced++;
      assert.equal(new Set(pieces.map((p) => p.owner)).size, pieces.length, 'one piece per owner');
      assert.ok(pieces.every((p) => p.owner !== 'n2'));
      const seen = new Uint8Array(part.n);
      for (const p of pieces) {
        const wire = wireKeys(p.keys);
        assert.equal(wire.length, p.n);
        let w = 0;
        for (const r of p.runs)
          for (let i = r.at; i < r.at + r.n; i++) {
            assert.equal(wire[w++], partKeys[i], "runs index the part's own keys");
            assert.equal(after.owner(shape, partKeys[i]), p.owner);
            seen[i]++;
          }
        for (let i = 1; i < p.runs.length; i++)
          assert.ok(p.runs[i].at > p.runs[i - 1].at + p.runs[i - 1].n, 'runs not adjacent');
      }
      assert.ok(
        seen.every((x) => x === 1),
        'every key of the part in exactly one piece',
      );
    }
  }
  assert.equal(resliced, 3, 'n2 had a part of every request');
  assert.deepEqual(resliceKeys(after, shape, { kind: 'list', keys: new Float64Array(0) }), []);
});

test("re-sliced pieces nested into the request: values are views of the request's, replies land in place", () => {
  const after = ring.withNodes(['n1', 'n3']);
  const d = shape.valueLength;
  for (const keys of [randomSortedKeys(createRng(22), 8000, shape.keySpace), { begin: 5, end: 300_000 }]) {
    const n = keys instanceof Float64Array ? keys.length : keys.end - keys.begin;
    const key = (i: number) => (keys instanceof Float64Array ? keys[i] : keys.begin + i);
    const values = Float32Array.from({ length: n * d }, (_, i) => i);
    const out = new Float32Array(values.length);
    for (const part of sliceByNode(ring, shape, keys)) {
      // Twice, as after two failovers: n2's part under a ring without n2, then without n3 too.
      const once = resliceKeys(after, shape, part.keys).map((p) => ({ ...p, runs: nestRuns(part.runs, p.runs) }));
      const twice = once.flatMap((piece) =>
        resliceKeys(after.withNodes(['n1']), shape, piece.keys).map((p) => ({
          ...p,
          runs: nestRuns(piece.runs, p.runs),
        })),
      );
      for (const p of twice) {
        assert.equal(p.owner, 'n1');
        const wire = wireKeys(p.keys);
        let w = 0;
        for (const r of p.runs) for (let i = r.at; i < r.at + r.n; i++) assert.equal(wire[w++], key(i));
        const views = partValues(values, p, d);
        assert.ok(
          views.every((v) => v.buffer === values.buffer),
          'views, not copies',
        );
        const reply = new Float32Array(p.n * d);
        let o = 0;
        for (const v of views) {
          reply.set(v, o);
          o += v.length;
        }
        scatterPart(reply, p, d, out);
      }
    }
    assert.deepEqual(out, values);
  }
});
