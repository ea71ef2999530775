#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: shared apps client server bench scripts e2e) on
// node's own test runner with the tsx loader, so the runner's summary lines print.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
}
for (const r of roots.length ? roots : ['shared', 'apps', 'client', 'server', 'bench', 'scripts', 'e2e']) {
  try {
    if (statSync(r).isFile()) files.push(r);
    else walk(r);
  } catch {
    // a root that does not exist yet has no tests
  }
}
files.sort();
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
