/**
 * Browser bundles and pages (docs/workers.md). Each bundle of `entries.ts` is built by esbuild
 * on first request and kept in memory (with a linked source map), and on disk between runs when
 * given a cache directory (bundle-cache.ts); simple-peer's Node
 * dependencies get their browser shims (`events`, `buffer`, `process`, `global` = globalThis).
 * The tfjs WebAssembly backend's `.wasm` files are served at `/assets/tfjs/` as
 * `application/wasm`. Pages are static HTML with a Content-Security-Policy that allows only
 * same-origin scripts (no inline scripts) and WebAssembly compilation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, version } from 'esbuild';
import type { FastifyPluginAsync } from 'fastify';
import { type BuildResult, type BuiltFiles, cachedBuild } from './bundle-cache.ts';
import { BUNDLES, type BundleEntry, PAGES, type PageEntry } from './entries.ts';

export interface AssetsOptions {
  bundles?: BundleEntry[];
  pages?: PageEntry[];
  /** Repository root the entries are relative to (default: this checkout). */
  root?: string;
  /** Minify bundles (default false: readable stack traces in tests). */
  minify?: boolean;
  /** Build every bundle when the gateway starts instead of on first request. */
  eager?: boolean;
  /** Keep built bundles here between runs (bundle-cache.ts); null or absent: build every time. */
  cacheDir?: string | null;
}

/** The policy sent with every page. */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHIMS = fileURLToPath(new URL('../../web/shims/node-globals.js', import.meta.url));
const TFJS_WASM = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
const BUILD_TARGET = 'chrome110';

type Built = BuiltFiles;

/** Bundles one entry: `<name>.js` and `<name>.js.map`, and the files it read. */
async function build1(entry: BundleEntry, root: string, minify: boolean): Promise<BuildResult> {
  const res = await build({
    absWorkingDir: root,
    entryPoints: { [entry.name]: join(root, entry.entry) },
    bundle: true,
    write: false,
    outdir: join(root, '.assets'),
    format: entry.format ?? 'esm',
    platform: 'browser',
    target: BUILD_TARGET,
    sourcemap: 'linked',
    minify,
    define: { global: 'globalThis' },
    inject: [SHIMS],
    logLevel: 'silent',
    metafile: true,
  });
  const files: Built = new Map();
  for (const f of res.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    const type = name.endsWith('.map') ? 'application/json' : name.endsWith('.css') ? 'text/css' : 'text/javascript';
    files.set(name, { body: f.contents, type });
  }
  return { files, inputs: Object.keys(res.metafile.inputs) };
}

/**
 * Bundles one entry, or reads it from `cacheDir` when that holds a build of the same settings and
 * inputs (bundle-cache.ts); `cached` says which.
 */
export function bundle(
  entry: BundleEntry,
  root = ROOT,
  minify = false,
  cacheDir: string | null = null,
): Promise<{ files: Built; cached: boolean }> {
  const key = {
    name: entry.name,
    entry: entry.entry,
    format: entry.format ?? 'esm',
    minify,
    target: BUILD_TARGET,
    esbuild: version,
  };
  return cachedBuild(cacheDir, root, key, () => build1(entry, root, minify));
}

export const assetsPlugin: FastifyPluginAsync<AssetsOptions> = async (app, opts) => {
  const root = opts.root ?? ROOT;
  const bundles = new Map((opts.bundles ?? BUNDLES).map((b) => [b.name, b]));
  const built = new Map<string, Promise<Built>>();
  const get = (b: BundleEntry): Promise<Built> => {
    let p = built.get(b.name);
    if (!p) {
      p = bundle(b, root, opts.minify, opts.cacheDir ?? null).then((r) => r.files);
      p.catch(() => built.delete(b.name)); // a failed build is retried on the next request
      built.set(b.name, p);
    }
    return p;
  };
  if (opts.eager) await Promise.all([...bundles.values()].map(get));

  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
    // <name>.js, or <name>.css when the entry imports CSS (esbuild writes it beside the script).
    const m = /^([A-Za-z0-9_.-]+?)\.(?:js|css)(\.map)?$/.exec(req.params.file);
    const b = m && bundles.get(m[1]);
    const f = b && (await get(b)).get(req.params.file);
    if (!f) return reply.callNotFound();
    return reply
      .type(f.type)
      .header('cache-control', 'no-cache')
      .send(Buffer.from(f.body.buffer, f.body.byteOffset, f.body.byteLength));
  });

  const wasmDir = join(root, TFJS_WASM);
  const wasm = new Map<string, Buffer>();
  const wasmNames = new Set(readdirSync(wasmDir).filter((n) => n.endsWith('.wasm')));
  app.get<{ Params: { file: string } }>('/assets/tfjs/:file', async (req, reply) => {
    const name = req.params.file;
    if (!wasmNames.has(name)) return reply.callNotFound();
    let body = wasm.get(name);
    if (!body) {
      body = readFileSync(join(wasmDir, name));
      wasm.set(name, body);
    }
    return reply.type('application/wasm').header('cache-control', 'max-age=3600').send(body);
  });

  for (const page of opts.pages ?? PAGES) {
    const html = readFileSync(join(root, page.html), 'utf8');
    app.get(page.path, async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', PAGE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(html),
    );
  }
};
