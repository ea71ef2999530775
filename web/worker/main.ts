/**
 * The worker page (the volunteer's page): opening it makes this tab a worker of a job. The work
 * itself is the worker bootstrap's (client/bootstrap.ts: connections to the job's server nodes,
 * WebRTC data channels with WebSocket where ICE fails, the scheduler session reopened with
 * backoff when it drops — state `reconnecting` — and the task loop), on the page's platform:
 * gradients computed in a Web Worker (compute-client.ts), shards kept in IndexedDB
 * (shard-cache.ts). This file is the page: what is trained and why, the tab's state and
 * contribution, the volunteer's controls over the CPU share and pause, and the hidden-tab record
 * (visibility.ts). The bootstrap's status is exposed as `window.tabshard` for the end-to-end
 * tests, with what the last task cost and the medians over recent tasks (client/task-times.ts).
 *
 * Query string: `?job=N`, `?cpu=F` (CPU share), `?relay=1` (relayed ICE candidates only),
 * `?iceTimeoutMs=MS`, `?slowdown=F` (an F× straggler), `?stall=MS:EVERY` (rest MS ms after every
 * EVERY-th task): the studies' knobs (client/runner.ts).
 */
import { type BootOptions, type BootState, type BootStatus, WorkerBootstrap } from '../../client/bootstrap.ts';
import { parseStall } from '../../client/runner.ts';
import { realClock } from '../../shared/clock-source.ts';
import { ComputeClient } from './compute-client.ts';
import { ShardCache } from './shard-cache.ts';
import { VisibilityLog, type VisibilityRecord } from './visibility.ts';
import './worker.css';

type PageStatus = BootStatus & { visibility?: VisibilityRecord };

const $ = (id: string) => document.getElementById(id)!;
const params = new URLSearchParams(location.search);
const CPU_KEY = 'tabshard.cpuShare';

/** The run's options from the query string (parseStall throws on a malformed `?stall=`). */
function pageOptions(): BootOptions {
  const stall = params.get('stall');
  return {
    url: location.origin,
    job: params.get('job') === null ? undefined : Number(params.get('job')),
    relayOnly: params.get('relay') === '1',
    iceTimeoutMs: Number(params.get('iceTimeoutMs') ?? 4000),
    slowdown: Math.max(1, Number(params.get('slowdown') ?? 1) || 1),
    stall: stall === null ? undefined : parseStall(stall),
    cpuShare: Number(params.get('cpu') ?? localStorage.getItem(CPU_KEY) ?? 1),
  };
}

let options: BootOptions = { url: location.origin };
let badOption: unknown = null;
try {
  options = pageOptions();
} catch (err) {
  badOption = err;
}

const boot = new WorkerBootstrap(
  {
    fetch: (url) => fetch(url),
    WebSocket,
    shards: new ShardCache(),
    compute: new ComputeClient('/assets/compute.worker.js', `${location.origin}/assets/tfjs/`),
    clock: realClock,
    agent: navigator.userAgent,
  },
  options,
  (ev) => {
    if (ev.type === 'job') $('about').textContent = `Job “${ev.info.name}”: ${ev.info.about ?? ''}`;
    else if (ev.type === 'status') render();
  },
);
const status: PageStatus = boot.status;
(globalThis as unknown as { tabshard: PageStatus }).tabshard = status;

const visibility = new VisibilityLog(() => render());
status.visibility = visibility.rec;
/** Tasks and examples already told to the visibility record. */
const seen = { tasks: 0, examples: 0 };

const STATE_TEXT: Record<BootState, string> = {
  starting: 'Starting',
  connecting: 'Connecting to the servers',
  working: 'Working',
  waiting: 'Waiting for work',
  reconnecting: 'Reconnecting',
  paused: 'Paused',
  done: 'Done — the job is finished. Thank you!',
  stopped: 'Stopped',
  failed: 'Stopped by an error',
};

function render(): void {
  if (status.tasks > seen.tasks) {
    visibility.task(status.examples - seen.examples);
    seen.tasks = status.tasks;
    seen.examples = status.examples;
  }
  $('state').textContent = STATE_TEXT[status.state];
  $('state-dot').className = `dot s-${status.state}`;
  $('state-detail').textContent = status.step ?? '';
  $('job').textContent = status.job === undefined ? '–' : `job ${status.job}, worker ${status.worker ?? '…'}`;
  const kinds = Object.entries(status.transports).map(([n, k]) => `${n}: ${k}`);
  $('transport').textContent = kinds.length ? kinds.join(', ') : '–';
  $('backend').textContent = status.backend ?? '–';
  $('tasks').textContent = String(status.tasks);
  $('examples').textContent = status.examples.toLocaleString('en');
  const c = status.contribution;
  $('share-of-job').textContent = c
    ? `${(100 * c.share).toFixed(1)} % of the tasks done so far (${c.tasksDone} of ${c.jobTasksDone})`
    : '–';
  $('job-progress').textContent = c ? `${c.jobTasksDone} of ${c.jobTasks} tasks done` : '–';
  const busy = status.computeMs + status.waitMs;
  const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
  $('traffic').textContent = `${mb(status.bytes.sent)} sent, ${mb(status.bytes.received)} received`;
  $('split').textContent = busy ? `${Math.round((100 * status.computeMs) / busy)} % computing` : '–';
  const m = status.taskMedians;
  $('task-times').textContent =
    m && m.n > 0
      ? `lease ${ms(m.leaseMs)} · pull ${ms(m.pullMs)} · compute ${ms(m.computeMs)} · push ${ms(m.pushMs)} · done ${ms(m.doneMs)}; ${m.frames} frames (median of ${m.n})`
      : '–';
  $('shards').textContent = `${status.downloads} downloaded, ${status.cacheHits} from this browser's cache`;
  $('hidden').textContent = visibility.describe();
  $('pause').textContent = status.paused ? 'Resume' : 'Pause';
  $('share-value').textContent = `${Math.round(status.cpuShare * 100)} %`;
  $('note').textContent = status.error
    ? `Error: ${status.error}`
    : status.fallback
      ? 'WebRTC could not connect to every server; this tab uses WebSocket for those.'
      : '';
}

const ms = (x: number | null) => (x === null ? '–' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);

function controls(): void {
  const slider = $('share') as HTMLInputElement;
  slider.value = String(Math.round(boot.cpuShare * 100));
  slider.addEventListener('input', () => {
    boot.cpuShare = Number(slider.value) / 100;
    localStorage.setItem(CPU_KEY, String(boot.cpuShare));
  });
  $('pause').addEventListener('click', () => {
    if (status.paused) boot.resume();
    else boot.pause();
    render();
  });
}

controls();
render();
(badOption === null ? boot.start() : Promise.reject(badOption)).catch((err: unknown) => {
  status.error = err instanceof Error ? err.message : String(err);
  status.state = 'failed';
  render();
});
