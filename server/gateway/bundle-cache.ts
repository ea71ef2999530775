/**
 * A browser bundle kept on disk between runs (assets.ts): the compute worker's bundle carries
 * tfjs (1,400 source files, ~10 MB with its source map) and takes esbuild seconds of CPU, which
 * every `tabshard start` would otherwise pay again before its first tab can work.
 *
 * An entry is a directory named by the build's settings (`key`), holding the output files and a
 * manifest: the settings, each output file's name and type, and the SHA-256 of every input the
 * build read (esbuild's metafile: sources, the shims, node_modules files). It is used only when
 * the settings match and every input still hashes the same: an edited source, a reinstalled
 * package or a missing file means a fresh build. Entries are written to a temporary directory
 * and renamed into place, so a reader never sees half of one; when two processes build the same
 * bundle at once, the first rename wins and the other's copy is dropped.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Output files by name: their bytes and MIME type. */
export type BuiltFiles = Map<string, { body: Uint8Array; type: string }>;

/** What a build produced: its files and the inputs it read, relative to `root`. */
export interface BuildResult {
  files: BuiltFiles;
  inputs: string[];
}

interface Manifest {
  key: unknown;
  /** The inputs' digest, and the inputs (relative to the root). */
  inputs: string;
  list: string[];
  files: Array<{ name: string; type: string }>;
}

/** One digest over the inputs' names and contents; throws when one cannot be read. */
function digestInputs(root: string, inputs: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of [...inputs].sort()) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

/** The cached files of `key`, or null when there is no valid entry. */
function load(entryDir: string, root: string, key: unknown): BuiltFiles | null {
  try {
    const m = JSON.parse(readFileSync(join(entryDir, 'manifest.json'), 'utf8')) as Manifest;
    if (JSON.stringify(m.key) !== JSON.stringify(key)) return null;
    if (digestInputs(root, m.list) !== m.inputs) return null;
    const files: BuiltFiles = new Map();
    for (const f of m.files) files.set(f.name, { body: readFileSync(join(entryDir, 'files', f.name)), type: f.type });
    return files;
  } catch {
    return null; // missing, damaged, or an input is gone: built again
  }
}

function store(dir: string, entryDir: string, root: string, key: unknown, built: BuildResult): void {
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.tmp-'));
  try {
    mkdirSync(join(tmp, 'files'));
    for (const [name, f] of built.files) writeFileSync(join(tmp, 'files', name), f.body);
    const manifest: Manifest = {
      key,
      inputs: digestInputs(root, built.inputs),
      list: built.inputs,
      files: [...built.files].map(([name, f]) => ({ name, type: f.type })),
    };
    writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
    rmSync(entryDir, { recursive: true, force: true }); // a stale entry of the same settings
    renameSync(tmp, entryDir);
  } catch {
    // another process renamed its copy first, or the disk refused: the build is still served
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The files of the build `key` describes: from `dir` when a valid entry is there, else from
 * `build()`, then stored. With `dir` null, always built. `cached` says which.
 */
export async function cachedBuild(
  dir: string | null,
  root: string,
  key: { name: string } & Record<string, unknown>,
  build: () => Promise<BuildResult>,
): Promise<{ files: BuiltFiles; cached: boolean }> {
  const id = createHash('sha256')
    .update(JSON.stringify([root, key]))
    .digest('hex')
    .slice(0, 16);
  const entryDir = dir === null ? null : join(dir, `${key.name}-${id}`);
  const hit = entryDir && load(entryDir, root, key);
  if (hit) return { files: hit, cached: true };
  const built = await build();
  if (dir !== null && entryDir !== null) store(dir, entryDir, root, key, built);
  return { files: built.files, cached: false };
}
