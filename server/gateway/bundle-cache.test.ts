/**
 * Bundles kept on disk between runs (bundle-cache.ts), with real esbuild over a small entry in a
 * temporary root: a second build of the same inputs is read back byte for byte; an edited input,
 * an input that is gone, other settings or a damaged entry each mean a fresh build.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bundle } from './assets.ts';

describe('bundles cached on disk', () => {
  const root = mkdtempSync(join(tmpdir(), 'tabshard-bundles-'));
  const cache = join(root, 'cache');
  after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src', 'a.ts'), "import { b } from './b.ts';\nconsole.log(b());\n");
  writeFileSync(join(root, 'src', 'b.ts'), "export const b = () => 'one';\n");
  const entry = { name: 'demo', entry: 'src/a.ts' };
  const js = (files: Map<string, { body: Uint8Array }>) => Buffer.from(files.get('demo.js')!.body).toString();

  it('serves the same bytes from the cache until an input changes', async () => {
    const first = await bundle(entry, root, false, cache);
    assert.equal(first.cached, false);
    assert.match(js(first.files), /"one"/);
    const again = await bundle(entry, root, false, cache);
    assert.equal(again.cached, true);
    assert.deepEqual([...again.files.keys()].sort(), ['demo.js', 'demo.js.map']);
    for (const [name, f] of first.files)
      assert.deepEqual(Buffer.from(again.files.get(name)!.body), Buffer.from(f.body));
    assert.equal(again.files.get('demo.js.map')!.type, 'application/json');

    writeFileSync(join(root, 'src', 'b.ts'), "export const b = () => 'two';\n"); // same size, new content
    const edited = await bundle(entry, root, false, cache);
    assert.equal(edited.cached, false);
    assert.match(js(edited.files), /"two"/);
    assert.equal((await bundle(entry, root, false, cache)).cached, true);
  });

  it('builds again for other settings, a missing input or a damaged entry', async () => {
    assert.equal((await bundle(entry, root, true, cache)).cached, false, 'minified is another build');
    assert.equal((await bundle(entry, root, true, cache)).cached, true);
    assert.equal((await bundle(entry, root, false, null)).cached, false, 'no cache directory: always built');

    // Damage every entry's manifest: each is built again and served right.
    for (const d of readdirSync(cache)) writeFileSync(join(cache, d, 'manifest.json'), '{"key":');
    const rebuilt = await bundle(entry, root, false, cache);
    assert.equal(rebuilt.cached, false);
    assert.match(js(rebuilt.files), /"two"/);

    // An input that is gone is not served from the cache: the build runs, and here it fails.
    unlinkSync(join(root, 'src', 'b.ts'));
    await assert.rejects(bundle(entry, root, false, cache), /b\.ts/);
    writeFileSync(join(root, 'src', 'a.ts'), "console.log('alone');\n");
    assert.equal((await bundle(entry, root, false, cache)).cached, false);
    const alone = await bundle(entry, root, false, cache);
    assert.equal(alone.cached, true);
    assert.match(js(alone.files), /"alone"/);
    assert.deepEqual(
      readdirSync(cache).filter((d) => d.startsWith('.tmp-')),
      [],
      'no temporary directories left',
    );
  });
});
