/**
 * The server group: one row per server node (addresses, the key ranges it owns on the ring for
 * the chosen table, its load: keys, bytes, pushes/s, connections) and the ring drawn as a strip
 * of the table's key space [0, K) coloured by owner. Ranges are computed here from the ring JSON
 * with the same rule the nodes and workers use (shared/ring.ts).
 */
import type { ClusterInfo } from '../../shared/cluster.ts';
import { Ring } from '../../shared/ring.ts';
import type { TableSpec } from '../../shared/table.ts';
import { fill, fmt, h, text } from './dom.ts';
import type { NodeLoad } from './types.ts';

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
  private readonly rows = new Map<string, Record<string, HTMLElement>>();
  private load = new Map<string, NodeLoad>();

  constructor() {
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
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ...['', 'node', 'addresses', 'ranges', 'key share', 'keys', 'bytes', 'pushes/s', 'connections'].map((c) =>
              h('th', null, c),
            ),
          ),
        ),
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
    for (const [i, node] of (c?.ring.nodes ?? []).entries()) this.addRow(node, i);
    this.pickTable();
  }

  setLoad(nodes: NodeLoad[]): void {
    this.load = new Map(nodes.map((n) => [n.node, n]));
    for (const [node, r] of this.rows) {
      const n = this.load.get(node);
      text(r.keys, n ? fmt.int(n.keys) : '–');
      text(r.bytes, n ? fmt.bytes(n.bytes) : '–');
      text(r.pushes, n ? fmt.num(n.pushesPerSec) : '–');
      text(r.conns, n ? String(n.connections) : '–');
    }
  }

  private addRow(node: string, i: number): void {
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = COLORS[i % COLORS.length];
    const addrs = Object.entries(this.cluster?.addresses[node] ?? {}).map(([k, v]) => `${k}: ${v}`);
    const cells = {
      ranges: h('td', { class: 'num' }),
      share: h('td', { class: 'num' }),
      keys: h('td', { class: 'num' }),
      bytes: h('td', { class: 'num' }),
      pushes: h('td', { class: 'num' }),
      conns: h('td', { class: 'num' }),
    };
    this.rows.set(node, cells);
    this.body.append(
      h(
        'tr',
        { data: { node } },
        h('td', null, swatch),
        h('td', null, node),
        h('td', { class: 'addr' }, ...addrs.flatMap((a) => [a, h('br')])),
        cells.ranges,
        cells.share,
        cells.keys,
        cells.bytes,
        cells.pushes,
        cells.conns,
      ),
    );
  }

  private pickTable(): void {
    const [job, id] = this.select.value.split('/').map(Number);
    this.table = this.cluster?.tables.find((t) => t.job === job && t.id === id) ?? null;
    const ring = this.ring;
    const t = this.table;
    text(
      this.summary,
      ring
        ? `${ring.nodes.length} nodes, ring v${ring.version}, ${ring.vnodes} virtual nodes each; replicas: none (replication factor 1).`
        : 'The server manager has not started.',
    );
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
}
