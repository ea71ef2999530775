/**
 * Browser bundles and pages through `inject()`: the real pages carry a CSP without inline
 * scripts, a bundle builds with its shims and a linked source map, tfjs wasm files are served as
 * application/wasm, nothing else is — the lab page is not the gateway's (the e2e harness serves it).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildApp } from './app.ts';

describe('gateway assets', () => {
  const app = buildApp({
    cluster: () => ({ ring: { version: 0, vnodes: 1, nodes: [] }, addresses: {}, tables: [] }) as never,
    stats: async () => [],
    assets: {},
  });
  after(() => app.close());

  for (const [path, script] of [
    ['/', 'worker'],
    ['/admin', 'admin'],
  ])
    it(`serves ${path} with a CSP that allows only same-origin scripts and wasm`, async () => {
      const res = await app.inject(path);
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'] as string, /^text\/html/);
      const csp = res.headers['content-security-policy'] as string;
      assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.ok(res.body.includes(`<script type="module" src="/assets/${script}.js"></script>`), res.body);
      assert.doesNotMatch(res.body, /<script>/);
    });

  it('does not serve the lab page or its bundle', async () => {
    for (const path of ['/lab', '/assets/lab.js', '/assets/lab.js.map'])
      assert.equal((await app.inject(path)).statusCode, 404, path);
  });

  it('bundles a browser entry with its shims and a linked source map', async () => {
    const js = await app.inject('/assets/worker.js');
    assert.equal(js.statusCode, 200);
    assert.match(js.headers['content-type'] as string, /^text\/javascript/);
    assert.match(js.body, /\/\/# sourceMappingURL=worker\.js\.map/);
    // simple-peer's Node dependencies are bundled (with the shims' globals), never left as require() calls.
    assert.doesNotMatch(js.body, /require\("(events|buffer|process)"\)/);
    const map = await app.inject('/assets/worker.js.map');
    assert.equal(map.statusCode, 200);
    const sources: string[] = map.json().sources;
    assert.ok(
      sources.some((s) => s.includes('node_modules/simple-peer/')),
      'the bundle holds simple-peer',
    );
    assert.equal((await app.inject('/assets/nope.js')).statusCode, 404);
    assert.equal((await app.inject('/assets/..%2Fapp.js')).statusCode, 404);
  });

  it('serves the tfjs wasm backend files as application/wasm', async () => {
    const res = await app.inject('/assets/tfjs/tfjs-backend-wasm-simd.wasm');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/wasm');
    assert.deepEqual([...res.rawPayload.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]);
    assert.equal((await app.inject('/assets/tfjs/..%2F..%2Fpackage.json')).statusCode, 404);
  });
});
