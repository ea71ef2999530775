/**
 * The server group: one row per server node (its state, addresses, the key ranges it owns on the
 * ring for the chosen table, the ranges it masters and holds replicas of over all tables when the
 * manager says, its load: keys, bytes, pushes/s, connections) and the ring drawn as a strip of the
 * table's key space [0, K) coloured by owner. Ranges per table are computed here from the ring
 * JSON with the same rule the nodes and workers use (shared/ring.ts). A node that is dead or did
 * not answer its last STATS is greyed: its numbers are the last it reported, not live.
 *
 * Each row has a Drain button (`POST /api/nodes/:id/drain`): off for a dead node, one already
 * draining and while the console's own drain request is out; the row's state shows the drain as
 * the stream reports it, and the button's note says how the request ended (refusals inline).
 */
import type { ClusterInfo } from '../../shared/cluster.ts';
import { Ring } from '../../shared/ring.ts';
import type { TableSpec } from '../../shared/table.ts';
import type { AdminApi } from './api.ts';
import { fill, fmt, h, text } from './dom.ts';
import type { NodeLoad } from './types.ts';

const COLUMNS: Array<[string, string | undefined]> = [
  ['', undefined],
  ['node', undefined],
  ['state', "The server manager's view: up, suspect, dead, joining, draining"],
  ['addresses', undefined],
  ['ranges', 'Key ranges of the chosen table this node owns on the ring'],
  ['key share', "Share of the chosen table's key space"],
  ['masters', 'Key ranges, over all tables, this node is the master of'],
  ['replicas', 'Key ranges, over all tables, this node holds a replica of'],
  ['keys', undefined],
  ['bytes', undefined],
  ['pushes/s', undefined],
  ['connections', undefined],
  ['', undefined],
];

/** The console's own drain request for a node: out, or how it ended. */
interface DrainRequest {
  pending: boolean;
  note: string;
  refused: boolean;
}

interface NodeRow extends Record<string, HTMLElement> {
  tr: HTMLTableRowElement;
  drain: HTMLButtonElement;
  drainNote: HTMLElement;
}

/** Why a row is greyed, as its tooltip ('' for a live node). */
function rowTitle(n: NodeLoad): string {
  if (n.error) {
    const since =
      n.sampledAt === null ? 'it never answered' : `numbers from ${new Date(n.sampledAt).toLocaleTimeString()}`;
    return `no STATS reply (${n.error}); ${since}`;
  }
  return n.up ? '' : `${n.state}: numbers not live`;
}

const COLORS = ['#3867d6', '#20bf6b', '#f7b731', '#eb3b5a', '#8854d0', '#0fb9b1', '#fa8231', '#4b6584'];

export class NodesView {
  readonly el: HTMLElement;
  private cluster: ClusterInfo | null = null;
  private ring: Ring | null = null;
  private table: TableSpec | null = null;
  private readonly select = h('select', { id: 'ring-table', on: { change: () => this.pickTable() } });
  private readonly strip = h('canvas', { class: 'ring-strip', width: 960, height: 28 });
  private readonly summary = h('p', { class: 'muted' });
  private readonly body = h('tbody');
  private readonly rows = new Map<string, NodeRow>();
  private load = new Map<string, NodeLoad>();
  /** Kept apart from the rows: a ring change rebuilds them while a drain is out. */
  private readonly drains = new Map<string, DrainRequest>();

  constructor(private readonly api: AdminApi) {
    this.el = h(
      'section',
      { id: 'nodes', class: 'card' },
      h('h2', null, 'Server group'),
      this.summary,
      h('label', { class: 'inline' }, 'Key ring of table ', this.select),
      this.strip,
      h(
        'table',
        { class: 'grid' },
        h('thead', null, h('tr', null, ...COLUMNS.map(([c, title]) => h('th', { title }, c)))),
        this.body,
      ),
    );
  }

  setCluster(c: ClusterInfo | null): void {
    this.cluster = c;
    this.ring = c ? Ring.fromJSON(c.ring) : null;
    const prev = this.select.value;
    const tables = c?.tables ?? [];
    fill(
      this.select,
      ...tables.map((t) => h('option', { value: `${t.job}/${t.id}` }, `job ${t.job} · ${t.name} (${t.kind})`)),
    );
    // Default: the largest table (the one whose spread over the ring matters).
    const largest = [...tables].sort((a, b) => b.keySpace * b.valueLength - a.keySpace * a.valueLength)[0];
    this.select.value = tables.some((t) => `${t.job}/${t.id}` === prev)
      ? prev
      : largest
        ? `${largest.job}/${largest.id}`
        : '';
    this.rows.clear();
    fill(this.body);
    for (const node of c?.ring.nodes ?? []) this.addRow(node);
    this.pickTable();
    this.setLoad([...this.load.values()]);
  }

  setLoad(nodes: NodeLoad[]): void {
    this.load = new Map(nodes.map((n) => [n.node, n]));
    // A node the ring does not name (a dead one taken out of it) still gets its row.
    const added = nodes.filter((n) => !this.rows.has(n.node));
    for (const n of added) this.addRow(n.node);
    if (added.length) this.pickTable();
    for (const [node, r] of this.rows) {
      const n = this.load.get(node);
      // Numbers the node reported at some point (the last ones, when it did not answer now).
      const reported = n?.sampledAt != null ? n : null;
      r.tr.classList.toggle('node-down', n !== undefined && !n.up);
      r.tr.title = n ? rowTitle(n) : '';
      text(r.state, !n ? '–' : n.error && n.state !== 'dead' ? `${n.state} (no answer)` : n.state);
      r.state.className = n ? `node-state node-${n.state}` : 'node-state';
      text(r.masters, n?.masters != null ? String(n.masters) : '–');
      text(r.replicas, n?.replicas != null ? String(n.replicas) : '–');
      text(r.keys, reported ? fmt.int(reported.keys) : '–');
      text(r.bytes, reported ? fmt.bytes(reported.bytes) : '–');
      // A rate needs two answers in a row: none for a node that did not answer now.
      text(r.pushes, reported && !reported.error ? fmt.num(reported.pushesPerSec) : '–');
      text(r.conns, reported ? String(reported.connections) : '–');
      this.showDrain(node);
    }
    this.summarize();
  }

  /** The Drain button and note of `node`'s row from its state and the console's request. */
  private showDrain(node: string): void {
    const r = this.rows.get(node);
    if (!r) return;
    const n = this.load.get(node);
    const d = this.drains.get(node);
    const why = !n
      ? 'its state is not known yet'
      : n.state === 'dead'
        ? 'a dead node holds nothing to drain'
        : n.state === 'draining'
          ? 'it is draining'
          : d?.pending
            ? 'the drain request is out'
            : '';
    r.drain.disabled = why !== '';
    r.drain.title = why ? `Drain: off (${why})` : `Move everything ${node} holds to the other nodes`;
    text(r.drainNote, d?.note ?? '');
    r.drainNote.className = d?.refused ? 'drain-note refused' : 'drain-note';
  }

  private drain(node: string): void {
    if (this.drains.get(node)?.pending) return;
    this.drains.set(node, { pending: true, note: 'draining…', refused: false });
    this.showDrain(node);
    this.api.drainNode(node).then(
      (r) => {
        this.drains.set(node, { pending: false, note: `drained (ring v${r.ring})`, refused: false });
        this.showDrain(node);
      },
      (err: Error) => {
        this.drains.set(node, { pending: false, note: `drain refused — ${err.message}`, refused: true });
        this.showDrain(node);
      },
    );
  }

  private addRow(node: string): void {
    const swatch = h('span', { class: 'swatch' });
    const i = this.ring?.nodes.indexOf(node) ?? -1;
    if (i >= 0) swatch.style.background = COLORS[i % COLORS.length];
    const addrs = Object.entries(this.cluster?.addresses[node] ?? {}).map(([k, v]) => `${k}: ${v}`);
    const cells = {
      state: h('td', { class: 'node-state' }),
      ranges: h('td', { class: 'num' }),
      share: h('td', { class: 'num' }),
      masters: h('td', { class: 'num' }),
      replicas: h('td', { class: 'num' }),
      keys: h('td', { class: 'num' }),
      bytes: h('td', { class: 'num' }),
      pushes: h('td', { class: 'num' }),
      conns: h('td', { class: 'num' }),
    };
    const drain = h(
      'button',
      { type: 'button', class: 'btn-drain', disabled: true, on: { click: () => this.drain(node) } },
      'Drain',
    );
    const drainNote = h('span', { class: 'drain-note', role: 'status' });
    const tr = h(
      'tr',
      { data: { node } },
      h('td', null, swatch),
      h('td', null, node),
      cells.state,
      h('td', { class: 'addr' }, ...addrs.flatMap((a) => [a, h('br')])),
      cells.ranges,
      cells.share,
      cells.masters,
      cells.replicas,
      cells.keys,
      cells.bytes,
      cells.pushes,
      cells.conns,
      h('td', { class: 'drain' }, drain, drainNote),
    );
    this.rows.set(node, { ...cells, tr, drain, drainNote });
    this.body.append(tr);
    this.showDrain(node);
  }

  private pickTable(): void {
    const [job, id] = this.select.value.split('/').map(Number);
    this.table = this.cluster?.tables.find((t) => t.job === job && t.id === id) ?? null;
    const ring = this.ring;
    const t = this.table;
    this.summarize();
    const ctx = this.strip.getContext('2d');
    if (ctx) ctx.clearRect(0, 0, this.strip.width, this.strip.height);
    if (!ring || !t) return;
    const ranges = ring.ranges(t);
    const per = new Map<string, { ranges: number; keys: number }>();
    const w = this.strip.width;
    for (const r of ranges) {
      const p = per.get(r.owner) ?? { ranges: 0, keys: 0 };
      p.ranges++;
      p.keys += r.end - r.begin;
      per.set(r.owner, p);
      if (ctx) {
        ctx.fillStyle = COLORS[ring.nodes.indexOf(r.owner) % COLORS.length];
        const x0 = (r.begin / t.keySpace) * w;
        ctx.fillRect(x0, 0, Math.max(1, (r.end / t.keySpace) * w - x0), this.strip.height);
      }
    }
    for (const [node, cells] of this.rows) {
      const p = per.get(node);
      text(cells.ranges, p ? String(p.ranges) : '0');
      text(cells.share, p ? `${fmt.num((100 * p.keys) / t.keySpace)} %` : '0 %');
    }
  }

  private summarize(): void {
    const ring = this.ring;
    if (!ring) {
      text(this.summary, 'The server manager has not started.');
      return;
    }
    const load = [...this.load.values()];
    const replicas = load.reduce((sum, n) => sum + (n.replicas ?? 0), 0);
    const down = load
      .filter((n) => !n.up)
      .map((n) => `${n.node} (${n.error && n.state !== 'dead' ? 'no answer' : n.state})`);
    text(
      this.summary,
      `${ring.nodes.length} nodes, ring v${ring.version}, ${ring.vnodes} virtual nodes each; ` +
        (replicas ? `${replicas} replica ranges held.` : 'replicas: none (replication factor 1).') +
        (down.length ? ` Not serving: ${down.join(', ')}.` : ''),
    );
  }
}
