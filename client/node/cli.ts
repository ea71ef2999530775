/**
 * `tabshard worker --url <gateway>`: a headless Node worker. The same bootstrap as a browser tab
 * (client/bootstrap.ts: connections, scheduler session reopened when it drops, task loop), on the
 * Node platform (client/node/platform.ts: tfjs in this process on its fastest backend, the WebRTC
 * stack from @roamhq/wrtc, shards kept in memory). This file is the command line: its flags, its
 * JSON lines, its signals and exit codes.
 *
 *   tabshard worker --url http://127.0.0.1:8080 [--job N] [--transport auto|webrtc|ws] [--slowdown F]
 *                   [--stall MS:EVERY] [--relay-only] [--prefetch 0|1] [--report-tasks] [--no-key-cache]
 *
 * --transport auto (default) falls back from WebRTC to the gateway's ws relay per node when the
 * data channel is not open within 4 s; webrtc waits 10 s; ws uses the relay alone.
 * --slowdown F makes this worker an F× straggler (client/runner.ts): the consistency study's knob.
 * --stall MS:EVERY makes it rest MS ms after every EVERY-th task: the stragglers study's other knob.
 * --relay-only lets WebRTC use relayed (TURN) candidates only, as behind a NAT that blocks UDP to
 * the nodes: the cluster's ICE servers must then include a TURN server. The `worker` line's
 * `routes` says per node how its connection travels: `webrtc` (direct), `turn`, or `ws`.
 * --no-key-cache sends every key list in full instead of by its hash (PROTOCOL.md §5.2): the
 * traffic study's baseline.
 * --prefetch 0 runs one task at a time instead of overlapping consecutive tasks (the default, 1).
 * --report-tasks prints one `{"event":"task",…}` line per task (client/task-times.ts: lease, pull,
 * compute, push, done times in ms, the loop's wait, frames sent). The `finished` line always
 * carries the totals, the medians of those times (`medians`), frames and wall time of the run.
 *
 * Lines: `worker` once the first scheduler session is open; `reconnecting` when the session
 * dropped (or could not be reopened) and is tried again after `retryInMs`; `reconnected` when a
 * session is open again (same worker id); `task` per task with --report-tasks; `finished` at the
 * end. SIGINT/SIGTERM: no new task, the leased ones finish, then `finished` with state `stopped`;
 * a second signal exits at once. Exit status 0 when finished, 1 on an error (one line on stderr),
 * 2 for a mistake on the command line.
 */
import { parseArgs } from 'node:util';
import type { BootOptions } from '../bootstrap-types.ts';
import { parseStall } from '../runner.ts';
import { round2, type TaskTimes, taskMedians } from '../task-times.ts';

const USAGE =
  'usage: tabshard worker --url http://gateway [--job N] [--transport auto|webrtc|ws] [--slowdown F] [--stall MS:EVERY] [--relay-only] [--prefetch 0|1] [--report-tasks] [--no-key-cache]';

/** The flags as bootstrap options, or a usage error. */
function parse(argv: string[]): { options: BootOptions; reportTasks: boolean } {
  const values = readFlags(argv);
  if (!values.url) {
    console.error(USAGE);
    process.exit(2);
  }
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(values.url))
    usageError(`--url must be http(s)://host[:port], not ${values.url}`);
  if (values.job !== undefined && !/^\d+$/.test(values.job))
    usageError(`--job must be a job number, not ${values.job}`);
  const transport = values.transport;
  if (transport !== 'auto' && transport !== 'webrtc' && transport !== 'ws')
    usageError(`--transport must be auto, webrtc or ws, not ${transport}`);
  const slowdown = Number(values.slowdown);
  if (!(slowdown >= 1 && Number.isFinite(slowdown)))
    usageError(`--slowdown must be a number ≥ 1, not ${values.slowdown}`);
  const prefetch = Number(values.prefetch);
  if (prefetch !== 0 && prefetch !== 1) usageError(`--prefetch must be 0 or 1, not ${values.prefetch}`);
  let stall: BootOptions['stall'];
  try {
    stall = values.stall === undefined ? undefined : parseStall(values.stall);
  } catch (err) {
    usageError(`--${(err as Error).message.replace(/^invalid argument: /, '')}`);
  }
  return {
    options: {
      url: values.url,
      job: values.job === undefined ? undefined : Number(values.job),
      transport,
      relayOnly: values['relay-only'],
      cacheKeys: !values['no-key-cache'],
      slowdown,
      stall,
      prefetch,
      // Nobody reads a headless worker's share of the job: it does not ask the job's status for it.
      credit: false,
    },
    reportTasks: values['report-tasks'],
  };
}

function readFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        job: { type: 'string' },
        transport: { type: 'string', default: 'auto' },
        slowdown: { type: 'string', default: '1' },
        stall: { type: 'string' },
        'relay-only': { type: 'boolean', default: false },
        prefetch: { type: 'string', default: '1' },
        'report-tasks': { type: 'boolean', default: false },
        'no-key-cache': { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    usageError((err as Error).message);
  }
}

async function main(): Promise<void> {
  const { options, reportTasks } = parse(process.argv.slice(3));
  // tfjs and the WebRTC stack load only after the command line is checked: a mistake is told at once.
  const [{ WorkerBootstrap }, { nodePlatform }] = await Promise.all([
    import('../bootstrap.ts'),
    import('./platform.ts'),
  ]);
  const slow = (options.slowdown ?? 1) > 1 ? ` (slowdown ${options.slowdown}×)` : '';
  const platform = nodePlatform({ agent: `node ${process.version}${slow}` });
  const tasks: TaskTimes[] = [];
  const line = (o: object) => console.log(JSON.stringify(o));
  const boot = new WorkerBootstrap(platform, options, (ev) => {
    if (ev.type === 'connected') {
      const { job, worker, backend, transports, routes } = ev;
      line({ event: 'worker', job, worker, backend, transports, routes });
    } else if (ev.type === 'dropped') line({ event: 'reconnecting', reason: ev.reason, retryInMs: ev.retryInMs });
    else if (ev.type === 'reconnected') line({ event: 'reconnected', worker: ev.worker, reconnects: ev.reconnects });
    else if (ev.type === 'task') {
      tasks.push(ev.times);
      if (reportTasks) line({ event: 'task', ...rounded(ev.times) });
    }
  });
  let signalled = false;
  const stop = () => {
    if (signalled) process.exit(1);
    signalled = true;
    void boot.stop();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const r = await boot.start();
  line({
    event: 'finished',
    ...r.totals,
    bytes: r.bytes,
    prefetch: options.prefetch,
    wallMs: r.wallMs,
    framesSent: r.framesSent,
    abandoned: r.abandoned,
    medians: taskMedians(tasks),
  });
}

/** A mistake on the command line: one line, exit status 2. */
function usageError(msg: string): never {
  console.error(`tabshard worker: ${msg}`);
  process.exit(2);
}

/** A task's times rounded to 0.01 ms for its JSON line. */
function rounded(t: TaskTimes): Record<string, number | boolean> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, typeof v === 'number' ? round2(v) : v]));
}

main().then(
  () => process.exit(0),
  (err) => {
    // One line (with its cause: "fetch failed" alone names nothing); the stack with TABSHARD_DEBUG=1.
    const line = (e: unknown) => (e instanceof Error ? e.message : String(e));
    const cause = err instanceof Error && err.cause !== undefined ? `: ${line(err.cause)}` : '';
    console.error(process.env.TABSHARD_DEBUG ? err : `tabshard worker: ${line(err)}${cause}`);
    process.exit(1);
  },
);
