/**
 * Run by client/bootstrap.test.ts as a child process: a Node worker (the bootstrap on the Node
 * platform) that joins the job at the gateway `argv[2]` over `argv[3]` (auto, webrtc or ws), calls
 * `stop()` once its first task is done, prints its totals as one JSON line and then only returns:
 * no `process.exit`, so the process ends only if the stop closed every socket, peer connection and
 * timer it opened.
 */
import { WorkerBootstrap } from '../bootstrap.ts';
import { nodePlatform } from './platform.ts';

const [url, transport] = process.argv.slice(2);
let stopping: Promise<void> | null = null;
const boot = new WorkerBootstrap(
  nodePlatform({ backends: ['wasm'] }),
  { url, transport: transport as 'auto' | 'webrtc' | 'ws' },
  (ev) => {
    if (ev.type === 'task') stopping ??= boot.stop();
  },
);
const r = await boot.start();
await stopping;
console.log(JSON.stringify({ totals: r.totals, state: boot.status.state }));
