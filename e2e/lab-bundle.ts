/**
 * The lab page for the tabs the harness opens (e2e/lab/). The gateway does not serve it, so the
 * harness bundles a lab entry itself with the gateway's bundle settings (server/gateway/assets.ts:
 * browser ESM for chrome110, a linked source map, web/shims/ for the Node globals simple-peer
 * uses) and answers `<gateway>/lab` and `<gateway>/assets/lab.js(.map)` through Playwright's
 * request interception on each browser context; every other request, the tfjs wasm files at
 * `/assets/tfjs/` included, goes to the gateway. The page is sent with the Content-Security-Policy
 * the gateway sends with its own pages (read from `/`), so a lab tab runs under the same rules.
 * The entry is built by path: the harness imports none of the project's code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { BrowserContext } from 'playwright-core';

/** The e2e tests' lab (what `window.tabshardLab` offers them). */
export const LAB_ENTRY = 'e2e/lab/main.ts';
const LAB_HTML = 'e2e/lab/index.html';
const SHIMS = 'web/shims/node-globals.js';

export interface LabBundle {
  /** URL path → what the tab is sent. */
  files: Map<string, { body: Buffer; type: string; headers?: Record<string, string> }>;
}

/** Bundles `entry` (relative to `root`) as `lab.js` beside the lab page; `csp` goes with the page. */
export async function buildLab(root: string, entry: string, csp: string): Promise<LabBundle> {
  const res = await build({
    absWorkingDir: root,
    entryPoints: { lab: join(root, entry) },
    bundle: true,
    write: false,
    outdir: join(root, '.assets'),
    format: 'esm',
    platform: 'browser',
    target: 'chrome110',
    sourcemap: 'linked',
    define: { global: 'globalThis' },
    inject: [join(root, SHIMS)],
    logLevel: 'silent',
  });
  const files: LabBundle['files'] = new Map();
  for (const f of res.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    const type = name.endsWith('.map') ? 'application/json' : 'text/javascript';
    files.set(`/assets/${name}`, { body: Buffer.from(f.contents), type });
  }
  files.set('/lab', {
    body: readFileSync(join(root, LAB_HTML)),
    type: 'text/html; charset=utf-8',
    headers: { 'content-security-policy': csp, 'x-content-type-options': 'nosniff' },
  });
  return { files };
}

/** The policy the gateway at `gateway` sends with its pages (its worker page, `/`). */
export async function gatewayPagePolicy(gateway: string): Promise<string> {
  const res = await fetch(`${gateway}/`);
  await res.arrayBuffer();
  const csp = res.headers.get('content-security-policy');
  if (!res.ok || !csp) throw new Error(`${gateway}/ answered ${res.status} without a Content-Security-Policy`);
  return csp;
}

const LAB_PATHS = new Set(['/lab', '/assets/lab.js', '/assets/lab.js.map']);

/**
 * Answers the lab's paths on the gateway's origin (`gateway()`: it may change after a restart)
 * in every page and Web Worker of `ctx`, from `lab()` (built on the first request). A response
 * fulfilled by interception has no network address, so Chromium's local network access checks
 * take the lab page for a public one and refuse its WebSockets to 127.0.0.1 (pages the gateway
 * serves are loopback pages, which may): the context is granted local network access on the
 * gateway's origin, as a user would grant it.
 */
export async function routeLab(
  ctx: BrowserContext,
  gateway: () => string,
  lab: () => Promise<LabBundle>,
): Promise<void> {
  await ctx.grantPermissions(['local-network-access'], { origin: new URL(gateway()).origin });
  await ctx.route(
    (url) => url.origin === new URL(gateway()).origin && LAB_PATHS.has(url.pathname),
    async (route) => {
      const f = (await lab()).files.get(new URL(route.request().url()).pathname);
      if (!f) return route.fulfill({ status: 404, body: 'not found' });
      return route.fulfill({
        status: 200,
        contentType: f.type,
        headers: { 'cache-control': 'no-cache', ...f.headers },
        body: f.body,
      });
    },
  );
}
