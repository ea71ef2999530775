#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: shared apps client server bench scripts e2e) on
// node's own test runner with the tsx loader, so the runner's summary lines print.
//
// Two passes: the files outside e2e/ run three at a time (much of their time is spent waiting on
// sockets, child processes and timers: on 2 cores the pass took 122 s three at a time, 162 s two
// at a time and 153 s four at a time, one run each); the e2e files run one at a time, since each
// drives a cluster and several Chromium tabs that need the whole machine.
// `--test-concurrency=N` on the command line sets the first pass's width.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('-'));
let width = '3';
const flags = args.filter((a) => {
  const m = /^--test-concurrency=(\d+)$/.exec(a);
  if (m) width = m[1];
  return a.startsWith('-') && !m;
});
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
const isE2e = (f) => f.split(sep)[0] === 'e2e';
const passes = [
  { files: files.filter((f) => !isE2e(f)), width },
  { files: files.filter(isE2e), width: '1' },
];
let status = 0;
for (const pass of passes) {
  if (pass.files.length === 0) continue;
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${pass.width}`, '--test-reporter=spec', ...flags, ...pass.files],
    { stdio: 'inherit' },
  );
  if (res.status !== 0) status = res.status ?? 1;
}
process.exit(status);
