// The control plane's web console: plain JS modules, no framework, no build step (docs/console.md).
// Routes live in the URL's hash: #/jobs?…filters, #/jobs/<id>, #/operators.
// The admin token is kept in sessionStorage and sent only in the Authorization header, never in a URL:
// the live streams are read with fetch and a stream reader because EventSource cannot send headers.
// Charts are drawn by uPlot (vendor/, pinned) through charts.js; results by results.js. Both modules are
// imported on demand (after the first rows of the list are drawn), so that only app.js and dom.js stand
// on the path to the first paint.

import {
  $,
  ago,
  badge,
  cut,
  fmtDuration,
  fmtShortTime,
  fmtTime,
  h,
  jobLink,
  jsonTree,
  kvTable,
  scroller,
} from './dom.js';

/** charts.js, imported when a view first has a chart to draw; `null` until it is loaded. */
let chartsModule = null;
let chartsLoading = null;
const chartsJs = () => {
  chartsLoading ??= import('./charts.js').then(
    (m) => {
      chartsModule = m;
      return m;
    },
    (err) => {
      chartsLoading = null;
      throw err;
    },
  );
  return chartsLoading;
};
/** charts.js with uPlot itself loaded. */
const charting = async () => {
  const m = await chartsJs();
  await m.uPlotReady();
  return m;
};
const resultsJs = () => import('./results.js');

const TOKEN_KEY = 'dpo.console.token';
const PER_PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How often at most the queue chart is fetched again while job events arrive. */
const QUEUE_REFRESH_MS = 5000;

let token = sessionStorage.getItem(TOKEN_KEY);
/** Aborts the current view's requests and streams when the view changes. */
let viewAbort = new AbortController();
/** The control plane's states and types (GET /v1/console/meta), read once per sign-in. */
let meta = null;

const view = () => $('#view');

/** The filters' states and types come from the control plane, read once per sign-in. */
let metaLoading = null;
async function loadMeta() {
  if (meta !== null) return meta;
  metaLoading ??= api('/v1/console/meta', { signal: undefined }).finally(() => {
    metaLoading = null;
  });
  meta = await metaLoading;
  return meta;
}
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

// --- the API ----------------------------------------------------------------------------------------------

class Refused extends Error {}

function refuse(status) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  showLogin(
    status === 403
      ? 'This token is not an admin token: the console needs the admin token.'
      : 'The token was refused.',
  );
  throw new Refused(String(status));
}

async function api(path, opts = {}) {
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: opts.method || 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal || viewAbort.signal,
    cache: 'no-store',
  });
  if (res.status === 401 || res.status === 403) refuse(res.status);
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
  return body;
}

function setLive(on) {
  const el = $('#live');
  el.className = `live ${on ? 'on' : 'off'}`;
  el.textContent = on ? 'live' : 'offline';
}

/**
 * Reads a server-sent event stream with fetch (so the token rides in a header), calling
 * `onEvent(name, data)` per event; reconnects with `Last-Event-ID` after a bounded, jittered backoff
 * until `signal` aborts.
 */
async function stream(path, onEvent, signal) {
  let lastId = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
      if (lastId !== null) headers['last-event-id'] = String(lastId);
      const res = await fetch(path, { headers, signal, cache: 'no-store' });
      if (res.status === 401 || res.status === 403) refuse(res.status);
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setLive(true);
      delay = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = null;
          let name = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('event: ')) name = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data === '') continue;
          if (id !== null) lastId = id;
          onEvent(name, JSON.parse(data));
        }
      }
    } catch (err) {
      if (err instanceof Refused || signal.aborted) return;
    }
    setLive(false);
    await sleep(delay * (0.5 + Math.random()), signal);
    delay = Math.min(delay * 2, 10_000);
  }
}

// --- login ---------------------------------------------------------------------------------------------------

function showLogin(message) {
  viewAbort.abort();
  viewAbort = new AbortController();
  setLive(false);
  $('#sign-out').hidden = true;
  const input = h('input', {
    type: 'password',
    id: 'token',
    autocomplete: 'off',
    placeholder: 'admin token',
  });
  const error = h('p', { id: 'login-error', class: 'error' }, message || '');
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (ev) => {
        ev.preventDefault();
        token = input.value.trim();
        try {
          await api('/v1/operators');
          sessionStorage.setItem(TOKEN_KEY, token);
          route();
        } catch (err) {
          if (!(err instanceof Refused)) error.textContent = String(err.message || err);
        }
      },
    },
    h('h2', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'The admin token of this control plane (for a local one: .data/admin.token).'),
    input,
    h('button', { type: 'submit', id: 'sign-in' }, 'Sign in'),
    error,
  );
  view().replaceChildren(form);
  input.focus();
}

// --- the jobs list ---------------------------------------------------------------------------------------------

const FILTER_KEYS = ['state', 'type', 'data_plane_id', 'company_id', 'cursor'];

function listFilters(params) {
  return Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) || '']));
}

function matches(f, e) {
  return (
    (!f.state || f.state.split(',').includes(e.state)) &&
    (!f.type || f.type.split(',').includes(e.type)) &&
    (!f.data_plane_id || f.data_plane_id === e.data_plane_id) &&
    (!f.company_id || Number(f.company_id) === e.company_id)
  );
}

/** The last failure of a job as `CODE: message`, the message cut short (the whole text on hover). */
function failureCell(failure) {
  if (!failure?.code) return '';
  const text = `${failure.code}: ${failure.message || ''}`;
  return h(
    'span',
    { class: 'failure', title: text },
    h('b', {}, failure.code),
    ` ${cut(failure.message || '', 48)}`,
  );
}

/** Duration of an ended job, elapsed time of a running one (ticking), waiting time of a pending one. */
function durationText(row) {
  const { started, ended, created } = row.dataset;
  if (ended) return fmtDuration(Date.parse(ended) - Date.parse(started || created));
  if (started) return fmtDuration(Date.now() - Date.parse(started));
  return '';
}

function progressText(fraction) {
  return typeof fraction === 'number' ? `${Math.round(fraction * 100)} %` : '';
}

function jobRow(j) {
  const tr = h(
    'tr',
    {
      'data-id': j.id,
      'data-updated': j.updated_at,
      'data-created': j.created_at,
      'data-started': j.started_at || undefined,
      'data-ended': j.ended_at || undefined,
    },
    h('td', {}, jobLink(j.id, j.id.slice(0, 8))),
    h('td', {}, j.type),
    h('td', { class: 'state' }, badge(j.state)),
    h('td', { class: 'num progress' }, j.ended_at ? '' : progressText(j.progress?.fraction)),
    h('td', { class: 'num duration' }),
    h('td', { class: 'failure-cell' }, failureCell(j.failures.at(-1))),
    h('td', { class: 'executor' }, j.executor || ''),
    h('td', { class: 'num attempt' }, `${j.attempt}/${j.max_attempts}`),
    h('td', { class: 'num' }, j.company_id),
    h('td', {}, j.data_plane_id || h('span', { class: 'muted' }, 'any')),
    h('td', { title: j.created_at }, fmtShortTime(j.created_at)),
  );
  tickRow(tr);
  return tr;
}

function tickRow(tr) {
  const cell = tr.querySelector('.duration');
  cell.textContent = durationText(tr);
  cell.classList.toggle('elapsed', !tr.dataset.ended && !!tr.dataset.started);
}

/** The queue over time: hour, day or week, fetched again (at most every few seconds) as jobs change. */
function queuePanel(range, signal) {
  const charts = h('div', { class: 'charts', id: 'queue-charts' });
  const ranges = meta?.queue_ranges || ['hour', 'day', 'week'];
  const buttons = h(
    'div',
    { class: 'ranges', role: 'group', 'aria-label': 'range' },
    ranges.map((r) =>
      h(
        'button',
        {
          type: 'button',
          id: `range-${r}`,
          class: r === range ? 'on' : '',
          'aria-pressed': r === range ? 'true' : 'false',
          onclick: () => {
            const p = new URLSearchParams(location.hash.split('?')[1] || '');
            p.set('range', r);
            location.hash = `#/jobs?${p}`;
          },
        },
        `last ${r}`,
      ),
    ),
  );
  // Open on a wide screen; on a phone it starts folded, so the list comes first.
  const panel = h(
    'details',
    { class: 'panel', id: 'queue', open: matchMedia('(min-width: 641px)').matches },
    h('summary', { class: 'panel-head' }, h('h3', {}, 'The queue over time'), buttons),
    charts,
  );
  let last = 0;
  let timer = null;
  let folded = false;
  // Charts take their box's width when drawn: a folded panel draws when it is opened.
  panel.addEventListener('toggle', () => {
    if (panel.open && folded) void load();
  });
  const load = async () => {
    folded = !panel.open;
    if (folded) return;
    last = Date.now();
    try {
      const [q, { queueCharts }] = await Promise.all([
        api(`/v1/console/queue?range=${range}`, { signal }),
        charting(),
      ]);
      if (signal.aborted) return;
      queueCharts(charts, q);
      charts.dataset.loaded = String(Number(charts.dataset.loaded || 0) + 1);
      performance.mark('dpo:queue-drawn');
    } catch (err) {
      if (!(err instanceof Refused) && !signal.aborted)
        charts.replaceChildren(h('p', { class: 'error' }, String(err.message || err)));
    }
  };
  const changed = () => {
    if (timer) return;
    timer = setTimeout(
      () => {
        timer = null;
        void load();
      },
      Math.max(0, QUEUE_REFRESH_MS - (Date.now() - last)),
    );
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  return { panel, load, changed };
}

async function showJobs(params) {
  const f = listFilters(params);
  const range = ['hour', 'day', 'week'].includes(params.get('range')) ? params.get('range') : 'hour';
  const signal = viewAbort.signal;
  // The page of jobs is asked for first: the queue chart's SQL (up to a few hundred ms over a week of
  // a busy queue) is asked for only once the list is drawn, so it never holds the list back.
  const q = new URLSearchParams({ per_page: String(PER_PAGE) });
  for (const k of FILTER_KEYS) if (f[k]) q.set(k, f[k]);
  const listed = api(`/v1/jobs?${q}`);
  listed.catch(() => {}); // awaited below, after the view is built
  // The filters' states and types are asked for beside the list, but the view and the list are drawn
  // without them: the choices are filled in when they arrive (after the first rows).
  const metaLoaded = loadMeta();
  metaLoaded.catch(() => {}); // awaited below, after the list
  const field = (label, control) => h('label', {}, label, control);
  const chosenStates = new Set(f.state ? f.state.split(',') : []);
  const states = h('fieldset', { class: 'chips', id: 'f-state' }, h('legend', {}, 'State'));
  const fillFilters = () => {
    states.append(
      ...meta.states.map((s) =>
        h(
          'label',
          { class: `chip s-${s}` },
          h('input', { type: 'checkbox', name: 'state', value: s, checked: chosenStates.has(s) }),
          s,
        ),
      ),
    );
    types.append(...meta.job_types.map((v) => h('option', { value: v, selected: f.type === v }, v)));
    form.dataset.ready = 'true';
  };
  const chosenTypes = f.type ? f.type.split(',') : [];
  const types = h(
    'select',
    { name: 'type', id: 'f-type' },
    h('option', { value: '' }, 'any'),
    chosenTypes.length > 1 ? h('option', { value: f.type, selected: true }, chosenTypes.join(' or ')) : '',
  );
  const input = (name, extra) => h('input', { name, id: `f-${name}`, value: f[name], ...extra });
  const search = h('input', { id: 'f-id', placeholder: 'job id', size: 38 });
  const error = h('p', { class: 'error', id: 'list-error' });
  const form = h(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (ev) => {
        ev.preventDefault();
        const id = search.value.trim();
        if (id) {
          if (UUID.test(id)) location.hash = `#/jobs/${id.toLowerCase()}`;
          else error.textContent = `'${id}' is not a job id`;
          return;
        }
        const q = new URLSearchParams();
        const picked = [...form.querySelectorAll('input[name="state"]:checked')].map((el) => el.value);
        if (picked.length) q.set('state', picked.join(','));
        for (const el of form.elements)
          if (el.name && el.name !== 'state' && el.value) q.set(el.name, el.value);
        if (range !== 'hour') q.set('range', range);
        location.hash = `#/jobs?${q}`;
      },
      onchange: (ev) => {
        if (ev.target !== search) form.requestSubmit();
      },
    },
    states,
    field('Type', types),
    field('Data plane', input('data_plane_id', { size: 14 })),
    field('Company', input('company_id', { size: 8, inputmode: 'numeric' })),
    field('Find by id', search),
    h('button', { type: 'submit' }, 'Apply'),
  );
  const tbody = h('tbody', { id: 'jobs' });
  const heads = [
    'Job',
    'Type',
    'State',
    ['Progress', 'num'],
    ['Duration', 'num'],
    'Failure',
    'Operator',
    ['Attempt', 'num'],
    ['Company', 'num'],
    'Data plane',
    'Created',
  ];
  const list = scroller(
    h(
      'table',
      { id: 'jobs-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          heads.map((c) => (Array.isArray(c) ? h('th', { class: c[1] }, c[0]) : h('th', {}, c))),
        ),
      ),
      tbody,
    ),
  );
  const pager = h('div', { class: 'pager' });
  const queue = queuePanel(range, signal);

  // Running jobs' elapsed time moves on with the clock (no request: the start time is on the row).
  const ticker = setInterval(() => {
    for (const tr of tbody.querySelectorAll('tr[data-started]:not([data-ended])')) tickRow(tr);
  }, 1000);
  signal.addEventListener('abort', () => clearInterval(ticker));

  // Events that arrive before the page is drawn wait for it; each is applied only if it is not older
  // than what the row shows (the list may already include it).
  let loaded = false;
  const early = [];
  const apply = (e) => {
    queue.changed();
    const row = tbody.querySelector(`tr[data-id="${e.job_id}"]`);
    if (row) {
      if (e.at < row.dataset.updated) return;
      row.dataset.updated = e.at;
      row.querySelector('.state').replaceChildren(badge(e.state));
      row.querySelector('.executor').textContent = e.executor || '';
      const [, max] = row.querySelector('.attempt').textContent.split('/');
      row.querySelector('.attempt').textContent = `${e.attempt}/${max}`;
      if (e.kind === 'claimed' || e.kind === 'claimed_for_cancel') {
        row.dataset.started ||= e.at;
        row.querySelector('.progress').textContent = '';
      }
      if (e.kind === 'rescheduled') {
        delete row.dataset.started;
        delete row.dataset.ended;
      }
      if (e.kind === 'progress') row.querySelector('.progress').textContent = progressText(e.data?.fraction);
      const failure = e.kind === 'failed' || e.kind === 'failure' ? e.data : e.data?.failure;
      if (failure?.code) row.querySelector('.failure-cell').replaceChildren(failureCell(failure));
      if (meta.terminal_states.includes(e.state)) {
        row.dataset.ended = e.at;
        row.querySelector('.progress').textContent = '';
      }
      tickRow(row);
    } else if (e.kind === 'created' && !f.cursor && matches(f, e)) {
      // Only the first page shows new jobs; the full job carries what the event does not.
      api(`/v1/jobs/${e.job_id}`, { signal })
        .then((j) => {
          if (tbody.querySelector(`tr[data-id="${j.id}"]`)) return;
          const tr = jobRow(j);
          tr.classList.add('flash');
          tbody.prepend(tr);
          while (tbody.children.length > PER_PAGE) tbody.lastElementChild.remove();
        })
        .catch(() => {});
    }
  };
  void stream(
    '/v1/events',
    (name, data) => {
      if (name === 'reset') route();
      else if (name === 'job') (loaded ? apply : (e) => early.push(e))(data);
    },
    signal,
  );

  let listDrawn = false;
  try {
    const page = await listed;
    tbody.replaceChildren(...page.jobs.map(jobRow));
    listDrawn = true;
    const next = new URLSearchParams(params);
    if (page.next_cursor) next.set('cursor', page.next_cursor);
    pager.replaceChildren(
      f.cursor ? h('a', { href: `#/jobs?${withoutCursor(params)}`, id: 'newest' }, '« Newest') : '',
      h(
        'span',
        { class: 'muted', id: 'count' },
        `${page.jobs.length} job${page.jobs.length === 1 ? '' : 's'}`,
      ),
      page.next_cursor ? h('a', { href: `#/jobs?${next}`, id: 'next-page' }, 'Older »') : '',
    );
  } catch (err) {
    if (!(err instanceof Refused) && !signal.aborted) error.textContent = String(err.message || err);
  }
  // The view goes into the document once, with its rows: one style and layout pass for the view and
  // the list together (the page shows "Loading…" for the few ms the list takes).
  if (signal.aborted) return;
  view().replaceChildren(h('h2', {}, 'Jobs'), queue.panel, form, error, list, pager);
  if (listDrawn) performance.mark('dpo:jobs-drawn');
  // Then the filters' choices, and the events that arrived meanwhile (applying one needs the states).
  try {
    await metaLoaded;
    if (signal.aborted) return;
    fillFilters();
    loaded = listDrawn;
    for (const e of early.splice(0)) apply(e);
  } catch (err) {
    if (!(err instanceof Refused) && !signal.aborted) error.textContent = String(err.message || err);
    return;
  }
  void queue.load();
}

function withoutCursor(params) {
  const p = new URLSearchParams(params);
  p.delete('cursor');
  return p;
}
// --- a job ----------------------------------------------------------------------------------------------------------

const KIND_LABELS = {
  created: 'Created',
  claimed: 'Claimed',
  claimed_for_cancel: 'Claimed to stop its remote work',
  progress: 'Progress',
  checkpoint: 'Checkpoint',
  retry_scheduled: 'Attempt failed, retry scheduled',
  failure: 'Attempt failed',
  released: 'Released',
  cancel_requested: 'Cancel requested',
  rescheduled: 'Rescheduled',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  updated: 'Updated',
};

function eventDetail(e) {
  const d = e.data;
  if (!d) return '';
  const failure = e.kind === 'failed' || e.kind === 'failure' ? d : d.failure;
  if (failure?.code) {
    const retry = d.not_before ? `; next try not before ${fmtTime(d.not_before)}` : '';
    return `${failure.code}: ${failure.message}${retry}`;
  }
  if (e.kind === 'progress') {
    return [d.fraction === undefined ? '' : `${Math.round(d.fraction * 100)} %`, d.message || '']
      .filter(Boolean)
      .join(' · ');
  }
  if (e.kind === 'checkpoint') return JSON.stringify(d.checkpoint);
  if (d.reason) return d.reason;
  return '';
}

function timeline(events, job) {
  const rows = events.map((e, i) => {
    const prev = events[i - 1];
    const who = e.kind === 'claimed' || e.kind === 'claimed_for_cancel' ? ` by ${e.executor}` : '';
    return h(
      'tr',
      { 'data-kind': e.kind },
      h('td', {}, fmtTime(e.at)),
      h('td', { class: 'num muted' }, prev ? `+${fmtDuration(Date.parse(e.at) - Date.parse(prev.at))}` : ''),
      h('td', {}, `${KIND_LABELS[e.kind] || e.kind}${who}`),
      h('td', {}, badge(e.state)),
      h('td', { class: 'num' }, e.attempt || ''),
      h('td', {}, eventDetail(e)),
    );
  });
  const end = job.ended_at ? Date.parse(job.ended_at) : Date.now();
  return h(
    'div',
    {},
    scroller(
      h(
        'table',
        { id: 'timeline' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Time', 'After', 'Event', 'State', 'Attempt', 'Detail'].map((c) => h('th', {}, c)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
    h(
      'p',
      { class: 'muted' },
      `${job.ended_at ? 'Took' : 'Running for'} ${fmtDuration(end - Date.parse(job.created_at))} since created`,
      job.started_at ? `, ${fmtDuration(end - Date.parse(job.started_at))} since first claimed` : '',
      '.',
    ),
  );
}

async function showJob(id) {
  const signal = viewAbort.signal;
  const head = h('div', {});
  const body = h('div', {});
  const logPre = h('pre', { id: 'log' });
  const error = h('p', { class: 'error', id: 'job-error' });
  view().replaceChildren(head, error, body, h('h3', {}, 'Log'), logPre);

  const act = (label, id, question, path, payload) =>
    h(
      'button',
      {
        type: 'button',
        id,
        onclick: async () => {
          if (!confirm(question)) return;
          try {
            const out = await api(path, { method: 'POST', body: payload });
            error.textContent = '';
            head.querySelector('.outcome')?.remove();
            head.append(h('p', { class: 'muted outcome' }, `${label}: ${out.outcome}`));
            await refresh();
          } catch (err) {
            if (!(err instanceof Refused)) error.textContent = String(err.message || err);
          }
        },
      },
      label,
    );

  const refresh = async () => {
    const [job, ev, ups, , { sweepCharts, ganttChart }, { readableResult }] = await Promise.all([
      api(`/v1/jobs/${id}`),
      api(`/v1/jobs/${id}/events`),
      api(`/v1/jobs/${id}/follow-ups`),
      loadMeta(),
      charting(),
      resultsJs(),
    ]);
    const terminal = meta.terminal_states.includes(job.state);
    // An action's notice ("Cancel: cancellation_requested") stays until the job has ended.
    const outcome = terminal ? null : head.querySelector('.outcome');
    head.replaceChildren(
      h(
        'h2',
        {},
        `${job.type} `,
        h('span', { class: 'mono' }, job.id),
        ' ',
        h('span', { id: 'job-state' }, badge(job.state)),
      ),
      h(
        'div',
        { class: 'actions' },
        terminal
          ? ''
          : act('Cancel', 'cancel', `Cancel job ${job.id}?`, `/v1/jobs/${id}/cancel`, {
              reason: 'cancelled from the console',
            }),
        terminal
          ? ''
          : act(
              'Reschedule',
              'reschedule',
              `Reschedule job ${job.id} (its current attempt is abandoned)?`,
              `/v1/jobs/${id}/reschedule`,
              {},
            ),
        act(
          'Force reschedule',
          'force-reschedule',
          `Force job ${job.id} to run again from scratch, even if it has ended?`,
          `/v1/jobs/${id}/reschedule`,
          { force: true },
        ),
      ),
      outcome || '',
    );
    const src = job.request_source;
    const readable = readableResult(job);
    const gantt = h('div', { class: 'chart', id: 'gantt' });
    // The lease token fences writes; it is not for display.
    const shown = { ...job, lease: job.lease ? { expires_at: job.lease.expires_at } : null };
    body.replaceChildren(
      kvTable([
        ['Company', job.company_id],
        ['Data plane', job.data_plane_id || 'any'],
        ['Operator', job.executor || '—'],
        ['Attempt', `${job.attempt} of ${job.max_attempts}`],
        [
          'Submitted by',
          src.type === 'job'
            ? h('span', { id: 'parent' }, `job `, jobLink(src.job_id), ` (${src.job_type})`)
            : src.token_name || src.type,
        ],
        [
          'Follow-ups',
          ups.jobs.length
            ? h(
                'span',
                { id: 'follow-ups' },
                ups.jobs.map((j) => h('span', {}, jobLink(j.id), ` ${j.type} `, badge(j.state), ' ')),
              )
            : '—',
        ],
      ]),
      h('h3', {}, 'Attempts'),
      gantt,
      h('h3', {}, 'Timeline'),
      timeline(ev.events, job),
      readable ? h('div', {}, h('h3', {}, 'Result'), readable.el) : '',
      h('h3', {}, 'Data'),
      ...['input', 'result', 'checkpoint', 'progress', 'failures'].map((k) =>
        h(
          'details',
          {
            class: 'data',
            id: `data-${k}`,
            open: k === 'input' || (k === 'result' && !readable && job.result !== null),
          },
          h('summary', {}, k),
          jsonTree(shown[k]),
        ),
      ),
      h('details', { class: 'data', id: 'data-job' }, h('summary', {}, 'the whole job'), jsonTree(shown)),
    );
    sweepCharts();
    ganttChart(gantt, ev.events, job);
    readable?.draw();
    body.dataset.drawn = String(Number(body.dataset.drawn || 0) + 1);
  };

  try {
    await refresh();
  } catch (err) {
    if (!(err instanceof Refused) && !signal.aborted) error.textContent = String(err.message || err);
    return;
  }
  let pending = null;
  void stream(
    `/v1/events?job_id=${id}`,
    (name) => {
      if (name !== 'job' || pending) return;
      // A burst of events redraws once.
      pending = setTimeout(() => {
        pending = null;
        refresh().catch(() => {});
      }, 100);
    },
    signal,
  );
  void stream(
    `/v1/jobs/${id}/logs/stream`,
    (name, line) => {
      if (name !== 'log') return;
      logPre.append(
        h(
          'div',
          { class: `log-line level-${line.level}` },
          `${line.ts}  ${line.level.padEnd(5)}  [attempt ${line.attempt}]  ${line.msg}`,
        ),
      );
    },
    signal,
  );
}

// --- operators -------------------------------------------------------------------------------------------------------

async function showOperators() {
  const signal = viewAbort.signal;
  const tbody = h('tbody', { id: 'operators' });
  const note = h('p', { class: 'muted' });
  view().replaceChildren(
    h('h2', {}, 'Operators'),
    note,
    scroller(
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'Operator',
              'Data plane',
              'Job types',
              'Capacity',
              'Jobs held',
              'Held over time',
              'Last seen',
              'Version',
              'Status',
            ].map((c) => h('th', {}, c)),
          ),
        ),
        tbody,
      ),
    ),
  );
  while (!signal.aborted) {
    try {
      const [{ operators, lease_ttl_ms }, { sparkline, sweepCharts }] = await Promise.all([
        api('/v1/operators'),
        charting(),
      ]);
      note.textContent = `Every operator seen since the control plane started (also as JSON: GET /v1/operators), with the jobs it held against its capacity over the last 15 minutes. Stale: no poll for longer than its long-poll wait plus the lease TTL (${fmtDuration(lease_ttl_ms)}).`;
      const draws = [];
      tbody.replaceChildren(
        ...operators.map((o) => {
          const spark = h('div', {
            class: 'spark',
            'data-samples': o.history.t.length,
            title: `held ${o.history.held.join(', ')} of capacity ${o.capacity}`,
          });
          draws.push(() => sparkline(spark, o.history));
          return h(
            'tr',
            { 'data-executor': o.executor_id },
            h('td', { class: 'mono' }, o.executor_id),
            h('td', {}, o.data_plane_id),
            h('td', { class: 'types' }, o.job_types.join(', ')),
            h('td', { class: 'num' }, o.capacity),
            h('td', { class: 'num' }, o.jobs_held),
            h('td', { class: 'spark-cell' }, spark),
            h('td', { title: o.last_poll_at }, ago(o.last_poll_at)),
            h('td', {}, o.version || '—'),
            h(
              'td',
              {},
              h('span', { class: `badge ${o.stale ? 'stale' : 'fresh'}` }, o.stale ? 'stale' : 'polling'),
            ),
          );
        }),
      );
      sweepCharts();
      for (const d of draws) d();
      if (operators.length === 0)
        tbody.append(h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No operator has polled yet.')));
    } catch (err) {
      if (err instanceof Refused) return;
    }
    await sleep(3000, signal);
  }
}

// --- routing ----------------------------------------------------------------------------------------------------------

function route() {
  viewAbort.abort();
  viewAbort = new AbortController();
  if (!token) {
    showLogin();
    return;
  }
  $('#sign-out').hidden = false;
  const hash = location.hash.replace(/^#/, '') || '/jobs';
  const [path, query] = hash.split('?');
  for (const a of document.querySelectorAll('header nav a'))
    a.classList.toggle('active', hash.startsWith(a.getAttribute('href').slice(1)));
  const job = path.match(/^\/jobs\/([0-9a-f-]{36})$/i);
  const shown = job
    ? showJob(job[1].toLowerCase())
    : path === '/operators'
      ? showOperators()
      : showJobs(new URLSearchParams(query || ''));
  shown.catch((err) => {
    if (!(err instanceof Refused)) console.error(err);
  });
  chartsModule?.sweepCharts(); // no chart was drawn before charts.js is loaded
}

window.addEventListener('hashchange', () => {
  route();
});
function start() {
  $('#sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    meta = null;
    showLogin('Signed out.');
  });
  route();
}
// A module runs after the document is parsed; DOMContentLoaded may already have fired.
if (document.readyState === 'loading') window.addEventListener('DOMContentLoaded', start);
else start();
