/**
 * Building DOM without markup: every string goes in as a text node (never innerHTML), so
 * whatever a worker or a job name contains is shown as text. Styles are set through the CSSOM
 * (`el.style.width = …`), which `style-src 'self'` allows; no `style=` attributes.
 */

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  title?: string;
  /** `data-*` attributes, without the prefix. */
  data?: Record<string, string | number>;
  on?: Partial<Record<keyof HTMLElementEventMap, (e: Event) => void>>;
  /** Other properties set on the element (type, value, disabled, …). */
  [prop: string]: unknown;
}

/** Creates `<tag>` with `props` and `children` (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v as object)) el.dataset[dk] = String(dv);
    else if (k === 'on')
      for (const [ev, fn] of Object.entries(v as object)) el.addEventListener(ev, fn as EventListener);
    else (el as unknown as Record<string, unknown>)[k] = v;
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Sets `el`'s text if it changed (cheap on every snapshot). */
export function text(el: Element, s: string): void {
  if (el.textContent !== s) el.textContent = s;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en'),
  num: (n: number, digits = 1) => n.toLocaleString('en', { maximumFractionDigits: digits }),
  bytes(n: number): string {
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return `${n.toLocaleString('en', { maximumFractionDigits: i ? 1 : 0 })} ${u[i]}`;
  },
  tau: (t: number | null) => (t === null ? '∞ (ASP)' : t === 0 ? '0 (BSP)' : String(t)),
  ago(ms: number): string {
    if (ms < 1000) return 'now';
    if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`;
    return `${Math.round(ms / 60_000)} min ago`;
  },
};

/** A short name for a browser from its user-agent string (the full string goes in a tooltip). */
export function browserName(agent: string): string {
  if (!agent) return '–';
  const m =
    /(HeadlessChrome|Edg|OPR|Chrome|Firefox|Version(?=.*Safari)|node)\/(\d+)/.exec(agent) ?? /^(\S{1,24})/.exec(agent);
  if (!m) return agent.slice(0, 24);
  const name = m[1] === 'Version' ? 'Safari' : m[1] === 'Edg' ? 'Edge' : m[1];
  return m[2] ? `${name} ${m[2]}` : name;
}
