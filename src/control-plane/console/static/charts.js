// The console's charts, all drawn by uPlot (static/vendor/, pinned: see vendor/VERSION). This module
// only turns the API's data into uPlot's options and data; it draws nothing itself. Labels placed over
// a chart (a holder's name on its bar) are HTML positioned with uPlot's own scale conversions.

/* global uPlot */

export const OUTCOME_COLORS = {
  running: '#3b82f6',
  completed: '#2e9d57',
  failed: '#d64541',
  lost: '#e8912d',
  cancelled: '#8e6bd1',
  released: '#8a96a3',
  rescheduled: '#5b6b7b',
};
const PALETTE = [
  '#3b82f6',
  '#e8912d',
  '#2e9d57',
  '#d64541',
  '#8e6bd1',
  '#0fa3b1',
  '#c2569b',
  '#7a8b2f',
  '#5b6b7b',
  '#b07d2b',
  '#1f5fa8',
  '#9c2f2f',
  '#3a7d44',
  '#6d4fb3',
  '#2b8a8a',
  '#a34d7a',
];
export const color = (i) => PALETTE[i % PALETTE.length];

let loading = null;
/**
 * Loads uPlot and its stylesheet (once) and resolves when they are ready. The page asks for them only
 * when it has a chart to draw, after the jobs table: neither the library's parsing nor a second
 * stylesheet stands on the path to the first paint and the first rows.
 */
export function uPlotReady() {
  loading ??= new Promise((resolve, reject) => {
    if (window.uPlot) {
      resolve();
      return;
    }
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = '/console/vendor/uPlot.min.css';
    const cssLoaded = new Promise((done) => {
      css.onload = done;
      css.onerror = done; // charts still draw, unstyled legends
    });
    document.head.append(css);
    const script = document.createElement('script');
    script.src = '/console/vendor/uPlot.iife.min.js';
    script.onload = () => cssLoaded.then(resolve);
    script.onerror = () => {
      loading = null;
      reject(new Error('the chart library did not load'));
    };
    document.head.append(script);
  });
  return loading;
}

const AXIS = { stroke: '#66707a', grid: { stroke: '#eef1f4' }, ticks: { stroke: '#e3e6ea' } };
const charts = new Set();

/**
 * Creates a uPlot chart sized to `el`'s width (unless `opts.width` fixes it); it follows the
 * element's width from then on.
 */
export function chart(el, opts, data) {
  const width = Math.max(160, el.clientWidth || el.parentElement?.clientWidth || 600);
  const u = new uPlot({ width, ...opts }, data, el);
  u.fixedWidth = opts.width !== undefined;
  charts.add(u);
  return u;
}

/** Destroys charts no longer in the document (the view changed). */
export function sweepCharts() {
  for (const u of charts) {
    if (!u.root.isConnected) {
      u.destroy();
      charts.delete(u);
    }
  }
}

let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const u of charts) {
      if (u.fixedWidth) continue;
      const w = u.root.parentElement?.clientWidth;
      if (w && Math.abs(w - u.width) > 4) u.setSize({ width: Math.max(160, w), height: u.height });
    }
  }, 100);
});

const fmtMs = (ms) =>
  ms == null
    ? '—'
    : ms < 1000
      ? `${Math.round(ms)} ms`
      : ms < 60_000
        ? `${(ms / 1000).toFixed(1)} s`
        : `${(ms / 60_000).toFixed(1)} min`;
const fmtNum = (n) => (n == null ? '—' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 }));
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
/** Axis labels: 1.2K, 3M. */
const fmtCompact = (n) =>
  n == null ? '' : Math.abs(n) < 1000 ? Number(n.toPrecision(3)).toLocaleString('en-US') : compact.format(n);

// --- a job's attempts (Gantt) --------------------------------------------------------------------------

const MARKERS = {
  lost: { label: 'lease lost', fill: '#e8912d', size: 13 },
  rescheduled: { label: 'rescheduled', fill: '#5b6b7b', size: 13 },
  cancel_requested: { label: 'cancel requested', fill: '#f2c14e', size: 13 },
  cancelled: { label: 'cancel confirmed', fill: '#8e6bd1', size: 13 },
  progress: { label: 'progress', fill: '#ffffff', size: 7 },
};

/**
 * A job's attempts from its event log: one bar per claim, from the claim to its outcome, plus the
 * markers (lease lost, rescheduled, cancel requested and confirmed) and progress ticks.
 */
export function attemptsOf(events, job) {
  const bars = [];
  const marks = [];
  let open = null;
  const close = (at, outcome) => {
    if (!open) return;
    open.end = at;
    open.outcome = outcome;
    open = null;
  };
  const failureOf = (e) => (e.kind === 'failed' || e.kind === 'failure' ? e.data : e.data?.failure);
  for (const e of events) {
    const at = Date.parse(e.at);
    const lane = () => (open ? open.lane : Math.max(0, bars.length - 1));
    switch (e.kind) {
      case 'claimed':
      case 'claimed_for_cancel':
        close(at, 'released');
        open = {
          lane: bars.length,
          attempt: e.attempt,
          holder: e.executor || '?',
          start: at,
          end: null,
          outcome: 'running',
          forCancel: e.kind === 'claimed_for_cancel',
        };
        bars.push(open);
        break;
      case 'progress':
        if (open) marks.push({ kind: 'progress', lane: open.lane, at, text: e.data?.message || '' });
        break;
      case 'cancel_requested':
        marks.push({ kind: 'cancel_requested', lane: lane(), at, text: e.data?.reason || '' });
        break;
      case 'rescheduled':
        marks.push({ kind: 'rescheduled', lane: lane(), at });
        close(at, 'rescheduled');
        break;
      case 'released':
        close(at, 'released');
        break;
      case 'completed':
        close(at, 'completed');
        break;
      case 'cancelled': {
        const f = e.data?.failure;
        if (f?.code === 'LEASE_EXPIRED') marks.push({ kind: 'lost', lane: lane(), at, text: f.message });
        marks.push({ kind: 'cancelled', lane: lane(), at, text: e.data?.reason || '' });
        close(at, 'cancelled');
        break;
      }
      case 'failed':
      case 'failure':
      case 'retry_scheduled': {
        const f = failureOf(e);
        const lost = f?.code === 'LEASE_EXPIRED';
        if (lost) marks.push({ kind: 'lost', lane: lane(), at, text: f.message });
        close(at, lost ? 'lost' : 'failed');
        if (open === null && bars.length && bars.at(-1).end === at) bars.at(-1).failure = f;
        break;
      }
      default:
        break;
    }
  }
  const now = job.ended_at ? Date.parse(job.ended_at) : Date.now();
  for (const b of bars) if (b.end === null) b.end = now;
  return { bars, marks };
}

/** Draws the attempts on a shared time axis into `el`. */
export function ganttChart(el, events, job) {
  const { bars, marks } = attemptsOf(events, job);
  el.dataset.bars = bars.map((b) => b.outcome).join(',');
  el.dataset.marks = marks
    .filter((m) => m.kind !== 'progress')
    .map((m) => m.kind)
    .join(',');
  el.dataset.ticks = String(marks.filter((m) => m.kind === 'progress').length);
  if (bars.length === 0) {
    el.append(
      Object.assign(document.createElement('p'), { className: 'muted', textContent: 'Not claimed yet.' }),
    );
    return null;
  }
  const n = bars.length;
  const laneY = (lane) => n - lane; // attempt 1 at the top
  const xs = [
    ...new Set([
      Date.parse(job.created_at),
      ...bars.flatMap((b) => [b.start, b.end]),
      ...marks.map((m) => m.at),
    ]),
  ].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const barSeries = bars.map((b) => xs.map((x) => (x >= b.start && x <= b.end ? laneY(b.lane) : null)));
  const markKinds = Object.keys(MARKERS).filter((k) => marks.some((m) => m.kind === k));
  const markSeries = markKinds.map((k) => {
    const ys = xs.map(() => null);
    for (const m of marks) if (m.kind === k) ys[index.get(m.at)] = laneY(m.lane);
    return ys;
  });
  const height = 70 + 34 * n;
  const labels = document.createElement('div');
  labels.className = 'gantt-labels';
  const opts = {
    height,
    ms: 1,
    cursor: { drag: { x: true, y: false }, points: { show: false } },
    legend: { show: true, live: false },
    scales: { x: { time: true }, y: { range: [0.4, n + 0.6] } },
    axes: [
      { ...AXIS },
      {
        ...AXIS,
        size: 84,
        splits: () => bars.map((_, i) => n - i),
        values: (_u, splits) => splits.map((y) => `attempt ${bars[n - y]?.attempt ?? ''}`),
      },
    ],
    series: [
      {},
      ...bars.map((b) => ({
        label: `#${b.attempt} ${b.outcome}`,
        stroke: OUTCOME_COLORS[b.outcome] || '#8a96a3',
        width: 18,
        cap: 'butt',
        spanGaps: false,
        points: { show: false },
      })),
      ...markKinds.map((k) => ({
        label: MARKERS[k].label,
        stroke: '#1d232a',
        fill: MARKERS[k].fill,
        width: 1.5,
        paths: () => null,
        points: { show: true, size: MARKERS[k].size, fill: MARKERS[k].fill, width: 1.5, space: 0 },
      })),
    ],
    hooks: {
      draw: [
        (u) => {
          // The holder's name on its bar, where the bar is wide enough to hold it.
          labels.replaceChildren();
          for (const b of bars) {
            const left = u.valToPos(b.start, 'x');
            const right = u.valToPos(b.end, 'x');
            const top = u.valToPos(laneY(b.lane), 'y');
            const tag = document.createElement('span');
            tag.className = 'gantt-holder';
            tag.textContent = b.forCancel ? `${b.holder} (stopping)` : b.holder;
            tag.style.left = `${Math.max(0, left) + 4}px`;
            tag.style.top = `${top - 9}px`;
            // A bar too short for its name has the name after it.
            if (right - left < 40) tag.classList.add('outside');
            else tag.style.maxWidth = `${Math.max(0, right - left - 8)}px`;
            labels.append(tag);
          }
          if (labels.parentElement !== u.over) u.over.append(labels);
        },
      ],
    },
  };
  const data = [xs, ...barSeries, ...markSeries];
  return chart(el, opts, data);
}

// --- the queue over time -----------------------------------------------------------------------------------

/** Three charts side by side: depth by type, completions and failures per minute, time to pickup. */
export function queueCharts(el, q) {
  el.replaceChildren();
  const types = [...new Set([...Object.keys(q.pending), ...Object.keys(q.running)])].sort();
  const panel = (title) => {
    const box = document.createElement('div');
    box.className = 'chart-box';
    const h = document.createElement('h4');
    h.textContent = title;
    const c = document.createElement('div');
    box.append(h, c);
    el.append(box);
    return c;
  };
  const base = {
    height: 200,
    ms: 1,
    cursor: { points: { size: 6 } },
    legend: { show: true, live: true },
    scales: { x: { time: true } },
  };
  // All three boxes first: the grid sizes its columns by how many there are, and each chart takes
  // its box's width when it is created.
  const depth = panel('Pending and running, by type');
  const rate = panel(`Completions and failures per minute (${fmtMs(q.bucket_ms)} buckets)`);
  const pickup = panel('Time to pickup (submission to first claim)');
  depth.id = 'queue-depth';
  depth.dataset.series = types.length ? types.join(',') : '';
  const depthSeries = [];
  const depthData = [q.t];
  types.forEach((t, i) => {
    for (const [cls, dash] of [
      ['pending', [4, 3]],
      ['running', undefined],
    ]) {
      if (!q[cls][t]) continue;
      depthSeries.push({ label: `${t} ${cls}`, stroke: color(i), width: cls === 'running' ? 2 : 1.5, dash });
      depthData.push(q[cls][t]);
    }
  });
  if (depthSeries.length === 0) {
    depthSeries.push({ label: 'no jobs', stroke: '#c9ced4' });
    depthData.push(q.t.map(() => 0));
  }
  chart(
    depth,
    {
      ...base,
      axes: [{ ...AXIS }, { ...AXIS, values: (_u, v) => v.map(fmtNum) }],
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      series: [{}, ...depthSeries],
    },
    depthData,
  );

  rate.id = 'queue-rate';
  rate.dataset.completed = String(q.completed_per_min.reduce((a, b) => a + b, 0) * (q.bucket_ms / 60_000));
  rate.dataset.failed = String(q.failed_per_min.reduce((a, b) => a + b, 0) * (q.bucket_ms / 60_000));
  const bars = uPlot.paths.bars({ size: [0.6, 40], gap: 1 });
  chart(
    rate,
    {
      ...base,
      axes: [{ ...AXIS }, { ...AXIS, values: (_u, v) => v.map(fmtNum) }],
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      series: [
        {},
        {
          label: 'completed / min',
          stroke: OUTCOME_COLORS.completed,
          fill: '#2e9d57aa',
          paths: bars,
          points: { show: false },
        },
        {
          label: 'failed / min',
          stroke: OUTCOME_COLORS.failed,
          fill: '#d64541cc',
          paths: bars,
          points: { show: false },
        },
      ],
    },
    [q.t, q.completed_per_min, q.failed_per_min],
  );

  pickup.id = 'queue-pickup';
  chart(
    pickup,
    {
      ...base,
      axes: [{ ...AXIS }, { ...AXIS, size: 60, values: (_u, v) => v.map(fmtMs) }],
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max)] } },
      series: [
        {},
        { label: 'p50', stroke: '#1f5fa8', width: 2, spanGaps: true, value: (_u, v) => fmtMs(v) },
        { label: 'p95', stroke: '#e8912d', width: 2, spanGaps: true, value: (_u, v) => fmtMs(v) },
      ],
    },
    [q.t, q.pickup_p50_ms, q.pickup_p95_ms],
  );
}

// --- small charts: bars by category, sparklines ----------------------------------------------------

/**
 * Bars, one per label (`horizontal`: a bar per row, for names that need room). `values` may hold
 * several series (`series: [{label, color}]`), drawn side by side.
 */
export function barChart(el, labels, values, o = {}) {
  const horizontal = o.horizontal ?? false;
  const series = o.series ?? [{ label: o.label ?? 'value', color: o.color ?? '#3b82f6' }];
  const rows = o.series ? values : [values];
  const xs = labels.map((_, i) => i);
  const fmt = o.format ?? fmtNum;
  const axisFmt = o.axisFormat ?? (o.format ? fmt : fmtCompact);
  const n = series.length;
  // Many categories on a narrow axis: every k-th label only.
  const every = horizontal ? 1 : Math.ceil(labels.length / 6);
  const height = o.height ?? (horizontal ? 30 + 26 * labels.length : 140);
  const opts = {
    height,
    legend: { show: n > 1, live: false },
    cursor: { show: !horizontal, points: { show: false } },
    scales: {
      x: {
        time: false,
        ori: horizontal ? 1 : 0,
        dir: horizontal ? -1 : 1,
        range: [-0.5, labels.length - 0.5],
      },
      y: { ori: horizontal ? 0 : 1, range: (_u, _min, max) => [0, o.max ?? (max > 0 ? max * 1.05 : 1)] },
    },
    axes: [
      {
        ...AXIS,
        side: horizontal ? 3 : 2,
        size: horizontal ? (o.labelWidth ?? 120) : 40,
        grid: { show: false },
        splits: () => xs,
        values: (_u, splits) => splits.map((i) => (i % every === 0 ? (labels[i] ?? '') : '')),
        rotate: horizontal ? 0 : undefined,
      },
      {
        ...AXIS,
        side: horizontal ? 0 : 3,
        size: horizontal ? 30 : 48,
        space: horizontal ? 70 : 30,
        values: (_u, v) => v.map(axisFmt),
      },
    ],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color,
        fill: `${s.color}cc`,
        value: (_u, v) => fmt(v),
        paths: uPlot.paths.bars({
          size: [n > 1 ? 0.8 / n : 0.7, 60],
          align: n > 1 ? (i === 0 ? -1 : 1) : 0,
        }),
        points: { show: false },
      })),
    ],
  };
  return chart(el, opts, [xs, ...rows]);
}

/** A histogram from `[{lower, upper, count}]` buckets (one bar per bucket). */
export function histogram(el, buckets) {
  const labels = buckets.map((b) => fmtCompact(b.lower));
  return barChart(
    el,
    labels,
    buckets.map((b) => b.count),
    { label: 'rows', color: '#0fa3b1', height: 120 },
  );
}

/** A sparkline of an operator's held jobs against its capacity (no axes, a tooltip legend). */
export function sparkline(el, history) {
  return chart(
    el,
    {
      width: 160,
      height: 36,
      ms: 1,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, 1.15 * Math.max(1, max, ...history.capacity)] },
      },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        {
          label: 'held',
          stroke: '#3b82f6',
          fill: '#3b82f622',
          width: 1.5,
          points: { show: true, size: 3, space: 0 },
        },
        { label: 'capacity', stroke: '#8a96a3', width: 1, dash: [3, 2], points: { show: false } },
      ],
    },
    [history.t, history.held, history.capacity],
  );
}
