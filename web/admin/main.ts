/**
 * The admin console (/admin): sign in with the cluster's admin token (kept in sessionStorage,
 * sent as `Authorization: Bearer`), then one live stream (stream.ts) drives every view — the
 * server group, each job with its workers and curves — and the controls call the admin REST
 * API. Nothing is polled. `window.tabshardConsole` exposes the stream's state for tests.
 */
import 'uplot/dist/uPlot.min.css';
import './admin.css';
import { AdminApi } from './api.ts';
import { fill, h, text } from './dom.ts';
import { JobCard } from './jobs.ts';
import { NodesView } from './nodes.ts';
import { ConsoleStream, type StreamMessage } from './stream.ts';
import type { ClusterMsg, Hello, MetricMsg, Snapshot } from './types.ts';

const TOKEN_KEY = 'tabshard.adminToken';

interface ConsoleStatus {
  stream: 'signed-out' | 'connecting' | 'live' | 'reconnecting' | 'refused';
  snapshots: number;
  /** performance.now() of the last snapshot applied to the page. */
  lastSnapshotAt: number;
}
const status: ConsoleStatus = { stream: 'signed-out', snapshots: 0, lastSnapshotAt: 0 };
(globalThis as unknown as { tabshardConsole: ConsoleStatus }).tabshardConsole = status;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const login = $<HTMLFormElement>('login');
const tokenInput = $<HTMLInputElement>('token');
const loginMsg = $('login-msg');
const app = $('app');
const streamState = $('stream-state');

let stream: ConsoleStream | null = null;

function signIn(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
  const api = new AdminApi(token);
  const nodes = new NodesView(api);
  const cards = new Map<number, JobCard>();
  const jobsEl = h('div', { id: 'jobs' });
  let history: Hello['metrics'] = {};
  fill(app, nodes.el, newJobForm(api), jobsEl);
  status.stream = 'connecting';
  text(streamState, 'connecting…');

  const card = (job: number): JobCard => {
    let c = cards.get(job);
    if (!c) {
      c = new JobCard(job, api);
      cards.set(job, c);
      jobsEl.append(c.el);
      for (const m of history[job] ?? []) c.addMetric(m);
    }
    return c;
  };

  stream?.close();
  stream = new ConsoleStream('/api/console/stream', token, {
    state(s, detail) {
      status.stream = s;
      if (s === 'refused') {
        sessionStorage.removeItem(TOKEN_KEY);
        stream?.close();
        showLogin(`The token was refused (${detail}).`);
        return;
      }
      login.hidden = true;
      app.hidden = false;
      $('logout').hidden = false;
      text(streamState, s === 'live' ? 'live' : 'connection lost, reconnecting…');
      streamState.className = `stream-${s}`;
    },
    message(raw: StreamMessage) {
      if (raw.type === 'hello') {
        const m = raw as unknown as Hello;
        history = m.metrics;
        // A reconnect resends the history: start the cards again from it.
        for (const c of cards.values()) c.el.remove();
        cards.clear();
        nodes.setCluster(m.cluster);
      } else if (raw.type === 'cluster') {
        nodes.setCluster((raw as unknown as ClusterMsg).cluster);
      } else if (raw.type === 'metric') {
        const m = raw as unknown as MetricMsg;
        history[m.job] = [...(history[m.job] ?? []), m.metric];
        cards.get(m.job)?.addMetric(m.metric);
      } else if (raw.type === 'snapshot') {
        const s = raw as unknown as Snapshot;
        nodes.setLoad(s.nodes);
        for (const j of s.jobs) card(j.job).update(j, s.t);
        status.snapshots++;
        status.lastSnapshotAt = performance.now();
      }
    },
  });
  stream.start();
}

function newJobForm(api: AdminApi): HTMLElement {
  const name = h('input', { type: 'text', name: 'name', placeholder: 'spam-logreg-2', maxLength: 64 });
  const iterations = h('input', { type: 'number', name: 'iterations', min: '1', value: '12' });
  const tau = h('input', { type: 'text', name: 'tau', size: 5, value: '0' });
  const msg = h('span', { class: 'msg' });
  const form = h(
    'form',
    {
      id: 'new-job',
      class: 'card',
      on: {
        submit: (e) => {
          e.preventDefault();
          const t = tau.value.trim().toLowerCase();
          text(msg, 'starting…');
          api
            .startJob({
              name: name.value.trim() || undefined,
              iterations: Number(iterations.value) || undefined,
              tau: t === 'inf' || t === 'asp' ? null : Number(t),
            })
            .then(
              (j) => text(msg, `started job ${(j as { job: number }).job}`),
              (err: Error) => text(msg, `refused — ${err.message}`),
            );
        },
      },
    },
    h('h2', null, 'Start a job'),
    h('label', null, 'name ', name),
    h('label', null, 'iterations ', iterations),
    h('label', null, 'τ ', tau),
    h('button', { type: 'submit' }, 'Start'),
    msg,
  );
  return form;
}

function showLogin(message = ''): void {
  status.stream = message ? 'refused' : 'signed-out';
  app.hidden = true;
  fill(app);
  login.hidden = false;
  $('logout').hidden = true;
  text(loginMsg, message);
  text(streamState, '');
  tokenInput.focus();
}

login.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = tokenInput.value.trim();
  if (token) signIn(token);
});
$('logout').addEventListener('click', () => {
  stream?.close();
  stream = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else showLogin();
