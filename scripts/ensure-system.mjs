#!/usr/bin/env node
// Before `npm test`: the Debian packages the tests drive for real — chromium (the e2e tabs,
// through playwright-core, which downloads no browser) and coturn (the TURN server of the
// NAT tests). Installs the missing ones with apt-get when run as root; otherwise says in one
// line what to install, and fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needed = [
  { pkg: 'chromium', bin: '/usr/bin/chromium' },
  { pkg: 'coturn', bin: '/usr/bin/turnserver' },
];
const missing = needed.filter((n) => !existsSync(n.bin)).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);
const root = process.getuid?.() === 0;
if (!root || !existsSync('/usr/bin/apt-get')) {
  console.error(`tabshard tests need Debian packages: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
const run = (args) => {
  const r = spawnSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    console.error(`tabshard: apt-get ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(1);
  }
};
console.error(`tabshard: installing ${missing.join(', ')} (apt-get)`);
run(['update', '-qq']);
run(['install', '-y', '-qq', ...missing]);
