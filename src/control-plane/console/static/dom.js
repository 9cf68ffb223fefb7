// Small DOM and formatting helpers shared by the console's modules.

/** Builds an element: attributes (`on…` are listeners), then children (strings become text). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}
export const $ = (sel) => document.querySelector(sel);
export const badge = (state) => h('span', { class: `badge s-${state}`, 'data-state': state }, state);
export const jobLink = (id, text) => h('a', { href: `#/jobs/${id}`, class: 'mono' }, text || id);
/** A table in a box that scrolls sideways on a narrow screen instead of widening the page. */
export const scroller = (table) => h('div', { class: 'scroll' }, table);

export const fmtInt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
/** A number with thousands separators (up to 6 decimals); anything else as text. */
export const fmtNumber = (n) =>
  typeof n === 'number' ? n.toLocaleString('en-US', { maximumFractionDigits: 6 }) : String(n);
/** Micro-cents of a US dollar (1 $ = 10^8 micro-cents) as currency. */
export const fmtMicroCents = (mc) =>
  typeof mc === 'number'
    ? new Intl.NumberFormat('en-US', {
        style: 'currency',
        currency: 'USD',
        minimumFractionDigits: 2,
        maximumFractionDigits: mc % 1e6 === 0 ? 2 : 8,
      }).format(mc / 1e8)
    : '—';
export function fmtBytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
export function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
// One formatter each, made once: Date's toLocaleString() builds a new Intl.DateTimeFormat per call,
// which cost up to a few ms a cell when the list's 50 rows were first drawn. The options are those
// toLocaleString() and toLocaleTimeString() use by default (ECMA-402, ToDateTimeOptions), so the text
// is the same.
const NUMERIC = 'numeric';
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: NUMERIC,
  month: NUMERIC,
  day: NUMERIC,
  hour: NUMERIC,
  minute: NUMERIC,
  second: NUMERIC,
});
const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: NUMERIC, minute: NUMERIC, second: NUMERIC });
export const fmtTime = (iso) => (iso ? dateTime.format(new Date(iso)) : '—');
/** Today's times as a time of day; other days' with their date. */
export const fmtShortTime = (iso) => {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? timeOfDay.format(d) : dateTime.format(d);
};
export const ago = (iso) => `${fmtDuration(Date.now() - Date.parse(iso))} ago`;
export const cut = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** JSON as a tree whose objects and arrays fold open and shut. */
export function jsonTree(value, key, depth = 0) {
  const label = key === undefined ? [] : [h('span', { class: 'k' }, key), ': '];
  if (value === null || typeof value !== 'object') {
    const cls = value === null ? 'z' : typeof value === 'string' ? 's' : 'n';
    return h('div', { class: 'json' }, ...label, h('span', { class: cls }, JSON.stringify(value)));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const shape = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return h(
    'details',
    { class: 'json', open: depth < 2 && entries.length <= 50 },
    h('summary', {}, ...label, h('span', { class: 'z' }, shape)),
    entries.map(([k, v]) => jsonTree(v, k, depth + 1)),
  );
}

export function kvTable(rows) {
  return h(
    'dl',
    { class: 'kv' },
    rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** A table from a header row and body rows; cells that are numbers are right-aligned. */
export function table(attrs, head, rows) {
  return scroller(
    h(
      'table',
      attrs,
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          head.map((c) => (c instanceof Node ? c : h('th', {}, c))),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}
