import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeShard, HELDOUT_INDEX } from '../../shared/apps/shard.ts';
import { TabshardError } from '../../shared/errors.ts';
import { prepareSpamData } from './spam-data.ts';
import { emailTokens, parseEmail } from './spam-email.ts';

describe('SpamAssassin data preparation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabshard-spam-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('splits the corpus into a held-out set and shards of both classes, cached byte for byte', async () => {
    const cold = await prepareSpamData({ cacheDir: dir, shards: 8, keyBits: 18, seed: 3 });
    assert.equal(cold.cached, false);
    const held = decodeShard(cold.heldout);
    assert.equal(held.index, HELDOUT_INDEX);
    const shards = cold.shards.map(decodeShard);
    assert.deepEqual(
      shards.map((s) => s.index),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    const total = held.labels.length + shards.reduce((n, s) => n + s.labels.length, 0);
    assert.equal(total, 6046, 'every e-mail is in exactly one part');
    assert.equal(held.labels.length, Math.round(6046 * 0.2));
    for (const s of shards) {
      const spam = s.labels.reduce((a, y) => a + y, 0);
      assert.ok(spam > 0.2 * s.labels.length && spam < 0.45 * s.labels.length, 'both classes, corpus-like mix');
      assert.ok(s.keys[s.keys.length - 1] < 2 ** 18);
    }

    const warm = await prepareSpamData({ cacheDir: dir, shards: 8, keyBits: 18, seed: 3 });
    assert.equal(warm.cached, true);
    assert.equal(warm.version, cold.version);
    assert.deepEqual(warm.heldout, cold.heldout);
    assert.deepEqual(warm.shards, cold.shards);

    const again = await prepareSpamData({ cacheDir: null, shards: 8, keyBits: 18, seed: 3 });
    assert.equal(again.cached, false);
    assert.equal(again.version, cold.version, 'same options, same bytes');
    assert.deepEqual(again.shards, cold.shards);
  });

  it('refuses bad options with TS_ERR_INVALID_ARGUMENT', async () => {
    for (const o of [{ shards: 0 }, { keyBits: 40 }, { heldoutFraction: 1 }, { maxChars: 0 }]) {
      await assert.rejects(
        prepareSpamData({ cacheDir: null, ...o }),
        (e: unknown) => e instanceof TabshardError && e.code === 'TS_ERR_INVALID_ARGUMENT',
      );
    }
  });

  it('reads subject, sender domain, content type and a capped, decoded body', () => {
    const raw =
      'From: Ann <ann@Example.COM>\nSubject: Cheap\n  pills\nContent-Type: text/html; charset=x\n\nHel=\nlo world =3D caf=C3 ' +
      'x'.repeat(50);
    const e = parseEmail(raw);
    assert.equal(e.subject, 'Cheap pills');
    assert.equal(e.fromDomain, 'example.com');
    assert.equal(e.contentType, 'text/html');
    const tokens = emailTokens(raw, 16);
    assert.deepEqual(tokens, ['s:cheap', 's:pills', 'from:example.com', 'ct:text/html', 'hello', 'world', 'ca']);
  });
});
