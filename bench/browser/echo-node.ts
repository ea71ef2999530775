/**
 * The server node of `npm run bench:browser`'s transport benchmark: the node `tabshard server`
 * runs (server/node/process.ts, startNode) with the raw echo (bench/lab/raw-echo.ts) injected as
 * its raw handler, so the tab's raw messages are answered by the same process, over the same
 * transports, as its parameter-server requests. The embedded cluster spawns it in place of
 * `tabshard server` (echo-cluster.ts); it takes the flags the cluster gives a node, `--lifeline`
 * and `--id`, the admin token from TABSHARD_ADMIN_TOKEN, and prints the same `listening` line.
 */
import { parseArgs } from 'node:util';
import { MAX_REPLY_BYTES } from '../../server/node/node.ts';
import { startNode } from '../../server/node/process.ts';
import { rawEcho } from '../lab/raw-echo.ts';

/** How long the node may take to close once its parent is gone (as `tabshard server --lifeline`). */
const LIFELINE_FORCE_MS = 1000;

const { values } = parseArgs({
  options: { id: { type: 'string', default: 'n1' }, lifeline: { type: 'boolean', default: false } },
});
const node = await startNode({
  id: values.id,
  adminToken: process.env.TABSHARD_ADMIN_TOKEN || undefined,
  rawHandler: rawEcho(MAX_REPLY_BYTES),
});
console.log(JSON.stringify({ event: 'listening', node: values.id, addresses: node.addresses }));

let stopping = false;
const stop = (forceAfterMs?: number) => {
  if (stopping) return;
  stopping = true;
  if (forceAfterMs !== undefined) setTimeout(() => process.exit(0), forceAfterMs);
  void node.close().then(() => process.exit(0));
};
process.on('SIGTERM', () => stop());
process.on('SIGINT', () => stop());
if (values.lifeline) {
  // The parent holds stdin open: its end means the parent is gone.
  for (const ev of ['end', 'close', 'error']) process.stdin.on(ev, () => stop(LIFELINE_FORCE_MS));
  process.stdin.resume();
  process.stdout.on('error', () => {});
}
