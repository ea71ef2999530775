/**
 * What the gateway serves to browsers, as data: browser bundles (esbuild entry points under
 * web/, served at `/assets/<name>.js`) and HTML pages (static files under web/, served with a
 * Content-Security-Policy). Adding a page or a Web Worker bundle is one line here.
 */

export interface BundleEntry {
  /** Served at `/assets/<name>.js` (and its source map at `/assets/<name>.js.map`). */
  name: string;
  /** Entry point, relative to the repository root. */
  entry: string;
  /** 'esm' for `<script type="module">` and module Web Workers (default), 'iife' for classic workers. */
  format?: 'esm' | 'iife';
}

export interface PageEntry {
  /** URL path of the page. */
  path: string;
  /** HTML file, relative to the repository root; it loads its scripts from /assets/ (no inline scripts). */
  html: string;
}

export const BUNDLES: BundleEntry[] = [
  { name: 'worker', entry: 'web/worker/main.ts' },
  { name: 'compute.worker', entry: 'web/worker/compute.worker.ts' },
  { name: 'admin', entry: 'web/admin/main.ts' },
];

export const PAGES: PageEntry[] = [
  { path: '/', html: 'web/worker/index.html' },
  { path: '/admin', html: 'web/admin/index.html' },
];
