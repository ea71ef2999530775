/**
 * One card per job: state, τ, progress, throughput, the held-out curves, the controls (pause,
 * resume, stop, τ) and the workers with the paper's Figure 10 — each worker's time computing
 * against its time waiting, as a bar. Every control goes through the admin REST API; the card
 * changes only when the stream shows the change, so what it shows is what the cluster did.
 */
import type { AdminApi } from './api.ts';
import { CurveChart } from './charts.ts';
import { browserName, fmt, h, text } from './dom.ts';
import type { JobView, Metric, WorkerView } from './types.ts';

interface WorkerRow {
  tr: HTMLTableRowElement;
  cells: Record<'browser' | 'transport' | 'state' | 'tasks' | 'rate' | 'heartbeat', HTMLElement>;
  compute: HTMLElement;
  wait: HTMLElement;
  split: HTMLElement;
  evict: HTMLButtonElement;
}

export class JobCard {
  readonly el: HTMLElement;
  private readonly f: Record<string, HTMLElement> = {};
  private readonly bar = h('div', { class: 'progress-fill' });
  private readonly loss = new CurveChart('Held-out log-loss', 'log-loss', '#eb3b5a');
  private readonly acc = new CurveChart('Held-out accuracy', 'accuracy', '#20bf6b');
  private readonly workers = h('tbody');
  private readonly rows = new Map<number, WorkerRow>();
  private readonly msg = h('p', { class: 'msg', role: 'status' });
  private readonly buttons: Record<'pause' | 'resume' | 'stop', HTMLButtonElement>;
  private readonly tauInput = h('input', { type: 'text', size: 5, placeholder: '0, 2, inf', class: 'tau-input' });
  private state = '';
  /** The model's insight (e.g. LDA's top words per topic): shown when the job's application gives one. */
  private readonly insightTitle = h('h4', { class: 'insight-title', hidden: true });
  private readonly insightRows = h('tbody');
  private insightKey = '';

  constructor(
    readonly job: number,
    private readonly api: AdminApi,
  ) {
    const field = (k: string, label: string) => {
      this.f[k] = h('dd', { class: `f-${k}` });
      return [h('dt', null, label), this.f[k]];
    };
    this.f.name = h('span', { class: 'job-name' });
    this.f.state = h('span', { class: 'badge' });
    const action = (a: 'pause' | 'resume' | 'stop', label: string) =>
      h('button', { type: 'button', class: `btn-${a}`, on: { click: () => this.run(api.control(job, a), a) } }, label);
    this.buttons = {
      pause: action('pause', 'Pause'),
      resume: action('resume', 'Resume'),
      stop: action('stop', 'Stop'),
    };
    const tauForm = h(
      'form',
      { class: 'tau-form', on: { submit: (e) => this.applyTau(e) } },
      h('label', null, 'τ ', this.tauInput),
      h('button', { type: 'submit', class: 'btn-tau' }, 'Apply τ'),
    );
    const progress = h('div', { class: 'progress' }, this.bar);
    this.el = h(
      'article',
      { class: 'card job', data: { job } },
      h('header', null, h('h3', null, `Job ${job}: `, this.f.name), this.f.state),
      progress,
      h(
        'dl',
        { class: 'facts' },
        ...field('tau', 'τ (consistency)'),
        ...field('progress', 'progress'),
        ...field('throughput', 'throughput'),
        ...field('latest', 'held-out'),
        ...field('reassign', 'reassigned tasks'),
        ...field('waiting', 'held LEASEs'),
        ...field('checkpoint', 'last checkpoint'),
      ),
      h('div', { class: 'controls' }, this.buttons.pause, this.buttons.resume, this.buttons.stop, tauForm),
      this.msg,
      h('div', { class: 'charts' }, this.loss.el, this.acc.el),
      this.insightTitle,
      h('table', { class: 'grid insight' }, this.insightRows),
      h('h4', null, 'Workers — time computing vs waiting (Figure 10)'),
      h(
        'table',
        { class: 'grid workers' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ...[
              'worker',
              'browser',
              'transport',
              'state',
              'tasks',
              'examples/s',
              'computing vs waiting',
              'last heard',
              '',
            ].map((c) => h('th', null, c)),
          ),
        ),
        this.workers,
      ),
    );
  }

  addMetric(m: Metric): void {
    this.loss.add(m, (x) => x.logLoss);
    this.acc.add(m, (x) => x.accuracy);
  }

  update(j: JobView, now: number): void {
    text(this.f.name, j.name);
    text(this.f.state, j.state);
    this.f.state.className = `badge state-${j.state}`;
    this.state = j.state;
    text(this.f.tau, fmt.tau(j.tau));
    const pct = j.tasks.total ? (100 * j.tasks.done) / j.tasks.total : 0;
    this.bar.style.width = `${pct.toFixed(1)}%`;
    text(
      this.f.progress,
      `${fmt.num(pct)} % — iteration ${j.iterationsDone} of ${j.iterations} done; tasks ${j.tasks.done}/${j.tasks.total} (${j.tasks.leased} leased)`,
    );
    text(this.f.throughput, `${fmt.num(j.examplesPerSec)} examples/s`);
    text(
      this.f.latest,
      j.latest
        ? `accuracy ${j.latest.accuracy.toFixed(4)}, log-loss ${j.latest.logLoss.toFixed(4)} (target ${j.target.accuracy})${j.reached ? ' ✓' : ''}`
        : '–',
    );
    // With backup tasks on: how many backups were leased, and how many finished their task first.
    const b = j.backups;
    text(this.f.reassign, `${j.reassignments}${b ? ` · backups ${b.won} won of ${b.granted}` : ''}`);
    text(this.f.waiting, String(j.waiting));
    const c = j.checkpoint;
    text(
      this.f.checkpoint,
      c
        ? `#${c.seq} at iteration ${c.iteration}, ${fmt.bytes(c.bytes)}, ${fmt.ago(Date.now() - c.at)} (held ${c.ms} ms)`
        : j.checkpoint === null
          ? 'none yet'
          : 'not kept (no data directory)',
    );
    const over = j.state === 'stopped' || j.state === 'done';
    this.buttons.pause.disabled = j.state !== 'running';
    this.buttons.resume.disabled = j.state !== 'paused';
    this.buttons.stop.disabled = over;
    this.updateWorkers(j.workers, now, over);
    this.updateInsight(j);
  }

  private updateInsight(j: JobView): void {
    const key = JSON.stringify(j.insight ?? null);
    if (key === this.insightKey) return;
    this.insightKey = key;
    this.insightTitle.hidden = !j.insight;
    text(this.insightTitle, j.insight?.title ?? '');
    this.insightRows.replaceChildren(
      ...(j.insight?.rows ?? []).map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v))),
    );
  }

  private updateWorkers(ws: WorkerView[], now: number, over: boolean): void {
    for (const w of ws) {
      let r = this.rows.get(w.worker);
      if (!r) {
        r = this.row(w.worker);
        this.rows.set(w.worker, r);
        this.workers.append(r.tr);
      }
      text(r.cells.browser, browserName(w.agent));
      r.cells.browser.title = w.agent;
      text(r.cells.transport, w.transport || '–');
      text(r.cells.state, w.connected ? (w.leases ? `working (${w.leases} lease)` : 'connected') : 'left');
      r.tr.classList.toggle('gone', !w.connected);
      text(r.cells.tasks, String(w.tasksDone));
      text(r.cells.rate, fmt.num(w.examplesPerSec));
      const total = w.computeMs + w.waitMs;
      const c = total ? (100 * w.computeMs) / total : 0;
      r.compute.style.width = `${c.toFixed(1)}%`;
      r.wait.style.width = `${total ? (100 - c).toFixed(1) : 0}%`;
      text(
        r.split,
        total ? `${Math.round(c)} % computing (${fmt.num(w.computeMs / 1000)} s / ${fmt.num(w.waitMs / 1000)} s)` : '–',
      );
      text(r.cells.heartbeat, fmt.ago(now - w.lastSeen));
      r.cells.heartbeat.title =
        w.lastHeartbeat === null ? 'no heartbeat yet' : `last heartbeat ${fmt.ago(now - w.lastHeartbeat)}`;
      r.evict.disabled = over || !w.connected;
    }
  }

  private row(worker: number): WorkerRow {
    const td = () => h('td');
    const cells = {
      browser: td(),
      transport: td(),
      state: td(),
      tasks: h('td', { class: 'num' }),
      rate: h('td', { class: 'num' }),
      heartbeat: td(),
    };
    const compute = h('span', { class: 'compute' });
    const wait = h('span', { class: 'wait' });
    const split = h('span', { class: 'split-label' });
    const evict = h(
      'button',
      {
        type: 'button',
        class: 'btn-evict',
        on: { click: () => this.run(this.api.evict(this.job, worker), `evict worker ${worker}`) },
      },
      'Evict',
    );
    const tr = h(
      'tr',
      { data: { worker } },
      h('td', { class: 'num' }, String(worker)),
      cells.browser,
      cells.transport,
      cells.state,
      cells.tasks,
      cells.rate,
      h('td', null, h('div', { class: 'split' }, compute, wait), split),
      cells.heartbeat,
      h('td', null, evict),
    );
    return { tr, cells, compute, wait, split, evict };
  }

  private applyTau(e: Event): void {
    e.preventDefault();
    const v = this.tauInput.value.trim().toLowerCase();
    const tau = v === 'inf' || v === '∞' || v === 'asp' ? null : Number(v);
    if (tau !== null && (!Number.isInteger(tau) || tau < 0 || v === '')) {
      text(this.msg, 'τ must be an integer ≥ 0, or inf');
      return;
    }
    this.run(this.api.setTau(this.job, tau), `τ = ${fmt.tau(tau)}`);
  }

  private run(p: Promise<unknown>, what: string): void {
    text(this.msg, `${what}…`);
    p.then(
      () => text(this.msg, `${what}: sent (the card changes when the cluster applies it)`),
      (err: Error) => text(this.msg, `${what} refused — ${err.message}`),
    );
  }

  /** For tests and the page's status: how many curve points are drawn. */
  get points(): number {
    return this.loss.points;
  }

  get jobState(): string {
    return this.state;
  }
}
