#!/usr/bin/env node
// The tabshard command: loads the TypeScript sources through tsx and runs the CLI. `worker` is the
// headless Node worker (client side); every other command is the server side's.
import { register } from 'tsx/esm/api';

register();
if (process.argv[2] === 'worker') await import('../client/node/cli.ts');
else await import('../server/cli.ts');
