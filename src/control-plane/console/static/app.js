// The control plane's web console: plain JS, no framework, no build step (see docs/console.md).
// Routes live in the URL's hash: #/jobs?…filters, #/jobs/<id>, #/operators.
// The admin token is kept in sessionStorage and sent only in the Authorization header, never in a URL:
// the live streams are read with fetch and a stream reader because EventSource cannot send headers.

const TOKEN_KEY = 'dpo.console.token';
const STATES = ['pending', 'running', 'pending_cancellation', 'completed', 'failed', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
  'materialized_views_collect_access_rules_billing_data',
  'datasets_create_table',
  'datasets_delete_table',
  'datasets_truncate_table',
  'datasets_sample',
  'datasets_calculate_column_stats',
  'datasets_execute_dml',
  'model_inference_run',
  'model_training_run',
  'models_train_classifier',
  'models_deliver_model',
];
const PER_PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let token = sessionStorage.getItem(TOKEN_KEY);
/** Aborts the current view's requests and streams when the view changes. */
let viewAbort = new AbortController();

// --- small DOM helpers ---------------------------------------------------------------------------

/** Builds an element: attributes (`on…` are listeners), then children (strings become text). */
function h(tag, attrs, ...children) {
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
const $ = (sel) => document.querySelector(sel);
const view = () => $('#view');
const badge = (state) => h('span', { class: `badge s-${state}`, 'data-state': state }, state);
const jobLink = (id, text) => h('a', { href: `#/jobs/${id}`, class: 'mono' }, text || id);
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

// --- formatting ---------------------------------------------------------------------------------------

const fmtInt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
/** Micro-cents of a US dollar (1 $ = 10^8 micro-cents) as currency. */
const fmtMicroCents = (mc) =>
  typeof mc === 'number'
    ? new Intl.NumberFormat('en-US', {
        style: 'currency',
        currency: 'USD',
        minimumFractionDigits: 2,
        maximumFractionDigits: mc % 1e6 === 0 ? 2 : 8,
      }).format(mc / 1e8)
    : '—';
function fmtBytes(n) {
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
function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const ago = (iso) => `${fmtDuration(Date.now() - Date.parse(iso))} ago`;

/** JSON as a tree whose objects and arrays fold open and shut. */
function jsonTree(value, key, depth = 0) {
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

function listFilters(params) {
  return {
    state: params.get('state') || '',
    type: params.get('type') || '',
    data_plane_id: params.get('data_plane_id') || '',
    company_id: params.get('company_id') || '',
    cursor: params.get('cursor') || '',
  };
}

function matches(f, e) {
  return (
    (!f.state || f.state.split(',').includes(e.state)) &&
    (!f.type || f.type.split(',').includes(e.type)) &&
    (!f.data_plane_id || f.data_plane_id === e.data_plane_id) &&
    (!f.company_id || Number(f.company_id) === e.company_id)
  );
}

function jobRow(j) {
  return h(
    'tr',
    { 'data-id': j.id, 'data-updated': j.updated_at },
    h('td', {}, jobLink(j.id, j.id.slice(0, 8))),
    h('td', {}, j.type),
    h('td', { class: 'state' }, badge(j.state)),
    h('td', { class: 'num' }, j.company_id),
    h('td', {}, j.data_plane_id || h('span', { class: 'muted' }, 'any')),
    h('td', { class: 'executor' }, j.executor || ''),
    h('td', { class: 'num attempt' }, `${j.attempt}/${j.max_attempts}`),
    h('td', {}, fmtTime(j.created_at)),
    h('td', { class: 'updated' }, fmtTime(j.updated_at)),
  );
}

async function showJobs(params) {
  const f = listFilters(params);
  const signal = viewAbort.signal;
  const field = (label, control) => h('label', {}, label, control);
  const select = (name, values) =>
    h(
      'select',
      { name, id: `f-${name}` },
      h('option', { value: '' }, 'any'),
      values.map((v) => h('option', { value: v, selected: f[name] === v }, v)),
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
        for (const el of form.elements) if (el.name && el.value) q.set(el.name, el.value);
        location.hash = `#/jobs?${q}`;
      },
      onchange: (ev) => {
        if (ev.target !== search) form.requestSubmit();
      },
    },
    field('State', select('state', STATES)),
    field('Type', select('type', TYPES)),
    field('Data plane', input('data_plane_id', { size: 14 })),
    field('Company', input('company_id', { size: 8, inputmode: 'numeric' })),
    field('Find by id', search),
    h('button', { type: 'submit' }, 'Apply'),
  );
  const tbody = h('tbody', { id: 'jobs' });
  const table = h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Job', 'Type', 'State', 'Company', 'Data plane', 'Operator', 'Attempt', 'Created', 'Updated'].map(
          (c) => h('th', {}, c),
        ),
      ),
    ),
    tbody,
  );
  const pager = h('div', { class: 'pager' });
  view().replaceChildren(h('h2', {}, 'Jobs'), form, error, table, pager);

  // Events that arrive before the page is drawn wait for it; each is applied only if it is not older
  // than what the row shows (the list may already include it).
  let loaded = false;
  const early = [];
  const apply = (e) => {
    const row = tbody.querySelector(`tr[data-id="${e.job_id}"]`);
    if (row) {
      if (e.at < row.dataset.updated) return;
      row.dataset.updated = e.at;
      row.querySelector('.state').replaceChildren(badge(e.state));
      row.querySelector('.executor').textContent = e.executor || '';
      row.querySelector('.updated').textContent = fmtTime(e.at);
      const [, max] = row.querySelector('.attempt').textContent.split('/');
      row.querySelector('.attempt').textContent = `${e.attempt}/${max}`;
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

  const q = new URLSearchParams({ per_page: String(PER_PAGE) });
  for (const k of ['state', 'type', 'data_plane_id', 'company_id', 'cursor']) if (f[k]) q.set(k, f[k]);
  try {
    const page = await api(`/v1/jobs?${q}`);
    tbody.replaceChildren(...page.jobs.map(jobRow));
    loaded = true;
    for (const e of early.splice(0)) apply(e);
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
    h(
      'p',
      { class: 'muted' },
      `${job.ended_at ? 'Took' : 'Running for'} ${fmtDuration(end - Date.parse(job.created_at))} since created`,
      job.started_at ? `, ${fmtDuration(end - Date.parse(job.started_at))} since first claimed` : '',
      '.',
    ),
  );
}

function kvTable(rows) {
  return h(
    'dl',
    { class: 'kv' },
    rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

function sourcesTable(sources) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Dataset'),
        h('th', { class: 'num' }, 'Rows'),
        h('th', { class: 'num' }, 'Size'),
      ),
    ),
    h(
      'tbody',
      {},
      (sources || []).map((s) =>
        h(
          'tr',
          {},
          h('td', {}, s.source?.dataset_id ?? ''),
          h('td', { class: 'num' }, fmtInt(s.rows)),
          h('td', { class: 'num' }, fmtBytes(s.size)),
        ),
      ),
    ),
  );
}

/** The result the way people read it, for the types that have a shape worth drawing. */
function readableResult(job) {
  const r = job.result;
  if (!r || typeof r !== 'object') return null;
  if (r.type === 'failure' || r.type === 'Failure')
    return h('p', { class: 'error' }, `Estimate failed: ${r.msg}`);
  if (job.type === 'nql-forecast' && r.type === 'Success') {
    const { columns, rows } = r.result;
    return h(
      'div',
      {},
      h(
        'table',
        { id: 'result-rows' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            columns.map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          rows.slice(0, 500).map((row) =>
            h(
              'tr',
              {},
              row.map((v) =>
                h(
                  'td',
                  { class: typeof v === 'number' ? 'num' : '' },
                  typeof v === 'object' ? JSON.stringify(v) : v,
                ),
              ),
            ),
          ),
        ),
      ),
      h(
        'p',
        { class: 'muted' },
        `${fmtInt(rows.length)} row${rows.length === 1 ? '' : 's'}${rows.length > 500 ? ' (first 500 shown)' : ''}`,
      ),
    );
  }
  if ((job.type === 'forecast' || job.type === 'forecast-internal') && r.type === 'success') {
    return h(
      'div',
      { id: 'result-forecast' },
      kvTable([
        ['Rows', fmtInt(r.rows)],
        ['Cost', h('span', { title: `${r.cost} micro-cents` }, fmtMicroCents(r.cost))],
        ['Estimator', r.estimator.type === 'sample' ? `sampled (rate ${r.estimator.rate})` : 'exact'],
        ['Scanned', `${fmtInt(r.scan_cost.rows)} rows, ${fmtBytes(r.scan_cost.size)}`],
      ]),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Dataset'),
            h('th', { class: 'num' }, 'Rows'),
            h('th', { class: 'num' }, 'Cost'),
          ),
        ),
        h(
          'tbody',
          {},
          r.datasets.map((d) =>
            h(
              'tr',
              {},
              h('td', {}, d.dataset_id),
              h('td', { class: 'num' }, fmtInt(d.rows)),
              h('td', { class: 'num' }, fmtMicroCents(d.cost)),
            ),
          ),
        ),
      ),
      h('h3', {}, 'Scanned sources'),
      sourcesTable(r.scan_cost.sources),
    );
  }
  if (job.type === 'costs' && r.type === 'success') {
    return h(
      'div',
      { id: 'result-costs' },
      kvTable([['Scanned', `${fmtInt(r.cost.rows)} rows, ${fmtBytes(r.cost.size)}`]]),
      sourcesTable(r.cost.sources),
    );
  }
  if (job.type === 'materialized_views_collect_access_rules_billing_data') {
    const total = r.sources.reduce((sum, s) => sum + s.rows * s.price_per_row.micro_cents_usd, 0);
    return h(
      'table',
      { id: 'result-billing' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Access rule'),
          h('th', { class: 'num' }, 'Rows'),
          h('th', { class: 'num' }, 'Price per row'),
          h('th', { class: 'num' }, 'Amount'),
        ),
      ),
      h(
        'tbody',
        {},
        r.sources.map((s) =>
          h(
            'tr',
            {},
            h('td', {}, s.access_rule_id),
            h('td', { class: 'num' }, fmtInt(s.rows)),
            h('td', { class: 'num' }, fmtMicroCents(s.price_per_row.micro_cents_usd)),
            h('td', { class: 'num' }, fmtMicroCents(s.rows * s.price_per_row.micro_cents_usd)),
          ),
        ),
        h(
          'tr',
          {},
          h('th', {}, 'Total'),
          h('th', { class: 'num' }, fmtInt(r.sources.reduce((n, s) => n + s.rows, 0))),
          h('th', {}),
          h('th', { class: 'num', id: 'billing-total' }, fmtMicroCents(total)),
        ),
      ),
    );
  }
  return null;
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
    const [job, ev, ups] = await Promise.all([
      api(`/v1/jobs/${id}`),
      api(`/v1/jobs/${id}/events`),
      api(`/v1/jobs/${id}/follow-ups`),
    ]);
    const terminal = TERMINAL.has(job.state);
    const outcome = head.querySelector('.outcome');
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
      h('h3', {}, 'Timeline'),
      timeline(ev.events, job),
      readable ? h('div', {}, h('h3', {}, 'Result'), readable) : '',
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
      h('details', { class: 'data' }, h('summary', {}, 'the whole job'), jsonTree(shown)),
    );
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
            'Last poll',
            'Version',
            'Status',
          ].map((c) => h('th', {}, c)),
        ),
      ),
      tbody,
    ),
  );
  while (!signal.aborted) {
    try {
      const { operators, lease_ttl_ms } = await api('/v1/operators');
      note.textContent = `Every operator seen since the control plane started (also as JSON: GET /v1/operators). Stale: no poll for longer than its long-poll wait plus the lease TTL (${fmtDuration(lease_ttl_ms)}).`;
      tbody.replaceChildren(
        ...operators.map((o) =>
          h(
            'tr',
            { 'data-executor': o.executor_id },
            h('td', { class: 'mono' }, o.executor_id),
            h('td', {}, o.data_plane_id),
            h('td', {}, o.job_types.join(', ')),
            h('td', { class: 'num' }, o.capacity),
            h('td', { class: 'num' }, o.jobs_held),
            h('td', { title: o.last_poll_at }, ago(o.last_poll_at)),
            h('td', {}, o.version || '—'),
            h(
              'td',
              {},
              h('span', { class: `badge ${o.stale ? 'stale' : 'fresh'}` }, o.stale ? 'stale' : 'polling'),
            ),
          ),
        ),
      );
      if (operators.length === 0)
        tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No operator has polled yet.')));
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
}

window.addEventListener('hashchange', () => {
  route();
});
window.addEventListener('DOMContentLoaded', () => {
  $('#sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    showLogin('Signed out.');
  });
  route();
});
