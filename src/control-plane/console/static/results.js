// A job's result drawn the way people read it, per job type. Each renderer returns the element and
// the charts to draw once it is in the document (uPlot needs the element's width).

import { barChart, histogram } from './charts.js';
import { fmtBytes, fmtInt, fmtMicroCents, fmtNumber, h, jsonTree, kvTable, table } from './dom.js';

const fmtPct = (v) => `${v < 0.1 && v > 0 ? v.toPrecision(1) : Number(v.toFixed(1))} %`;
const num = (v) => h('td', { class: 'num' }, typeof v === 'number' ? fmtNumber(v) : v);

/** The type of a result column from its values: number, string, boolean, json, null or mixed. */
export function columnType(rows, i) {
  const kinds = new Set();
  for (const row of rows) {
    const v = row[i];
    if (v === null || v === undefined) continue;
    kinds.add(typeof v === 'object' ? 'json' : typeof v);
  }
  if (kinds.size === 0) return 'null';
  return kinds.size === 1 ? [...kinds][0] : 'mixed';
}

function sourcesTable(sources) {
  return table(
    {},
    ['Dataset', h('th', { class: 'num' }, 'Rows'), h('th', { class: 'num' }, 'Size')],
    (sources || []).map((s) =>
      h('tr', {}, h('td', {}, s.source?.dataset_id ?? ''), num(s.rows), num(fmtBytes(s.size))),
    ),
  );
}

/** Returns `{el, draw}`, or null when the type has no shape worth drawing. */
export function readableResult(job) {
  const r = job.result;
  if (!r || typeof r !== 'object') return null;
  const draws = [];
  const chartBox = (cls, draw) => {
    const el = h('div', { class: `chart ${cls || ''}` });
    draws.push(() => draw(el));
    return el;
  };
  const done = (el) => ({
    el,
    draw: () => {
      for (const d of draws) d();
    },
  });

  if (r.type === 'failure' || r.type === 'Failure')
    return done(h('p', { class: 'error' }, `Estimate failed: ${r.msg}`));

  if (job.type === 'nql-forecast' && r.type === 'Success') {
    const { columns, rows } = r.result;
    const types = columns.map((_, i) => columnType(rows, i));
    return done(
      h(
        'div',
        {},
        table(
          { id: 'result-rows' },
          columns.map((c, i) =>
            h(
              'th',
              { class: types[i] === 'number' ? 'num' : '' },
              c,
              h('span', { class: 'coltype' }, types[i]),
            ),
          ),
          rows.slice(0, 500).map((row) =>
            h(
              'tr',
              {},
              row.map((v) =>
                typeof v === 'number'
                  ? num(v)
                  : h(
                      'td',
                      {},
                      v !== null && typeof v === 'object' ? JSON.stringify(v) : v === null ? '∅' : String(v),
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
      ),
    );
  }

  if ((job.type === 'forecast' || job.type === 'forecast-internal') && r.type === 'success') {
    return done(
      h(
        'div',
        { id: 'result-forecast' },
        kvTable([
          ['Rows', fmtInt(r.rows)],
          ['Cost', h('span', { title: `${r.cost} micro-cents` }, fmtMicroCents(r.cost))],
          ['Estimator', r.estimator.type === 'sample' ? `sampled (rate ${r.estimator.rate})` : 'exact'],
          ['Scanned', `${fmtInt(r.scan_cost.rows)} rows, ${fmtBytes(r.scan_cost.size)}`],
        ]),
        table(
          {},
          ['Dataset', h('th', { class: 'num' }, 'Rows'), h('th', { class: 'num' }, 'Cost')],
          r.datasets.map((d) =>
            h('tr', {}, h('td', {}, d.dataset_id), num(d.rows), num(fmtMicroCents(d.cost))),
          ),
        ),
        chartBox('result-forecast-bars', (el) =>
          barChart(
            el,
            r.datasets.map((d) => `dataset ${d.dataset_id}`),
            r.datasets.map((d) => d.cost / 1e8),
            { horizontal: true, label: 'cost ($)', color: '#2e9d57', format: (v) => fmtMicroCents(v * 1e8) },
          ),
        ),
        h('h3', {}, 'Scanned sources'),
        sourcesTable(r.scan_cost.sources),
      ),
    );
  }

  if (job.type === 'costs' && r.type === 'success') {
    return done(
      h(
        'div',
        { id: 'result-costs' },
        kvTable([['Scanned', `${fmtInt(r.cost.rows)} rows, ${fmtBytes(r.cost.size)}`]]),
        sourcesTable(r.cost.sources),
      ),
    );
  }

  if (job.type === 'materialized_views_collect_access_rules_billing_data') {
    const total = r.sources.reduce((sum, s) => sum + s.rows * s.price_per_row.micro_cents_usd, 0);
    return done(
      table(
        { id: 'result-billing' },
        [
          'Access rule',
          h('th', { class: 'num' }, 'Rows'),
          h('th', { class: 'num' }, 'Price per row'),
          h('th', { class: 'num' }, 'Amount'),
        ],
        [
          ...r.sources.map((s) =>
            h(
              'tr',
              {},
              h('td', {}, s.access_rule_id),
              num(s.rows),
              num(fmtMicroCents(s.price_per_row.micro_cents_usd)),
              num(fmtMicroCents(s.rows * s.price_per_row.micro_cents_usd)),
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
        ],
      ),
    );
  }

  if (job.type === 'datasets_calculate_column_stats' && r.columns) {
    return done(
      h(
        'div',
        { id: 'result-column-stats', class: 'cards' },
        Object.entries(r.columns).map(([name, s]) => {
          const rows = s.value_count ?? null;
          const facts = [
            ['values', fmtInt(s.value_count)],
            ['nulls', fmtInt(s.null_value_count)],
            ['distinct (approx.)', fmtInt(s.approx_count_distinct)],
            ['min', s.lower_bound === undefined ? '—' : fmtNumber(s.lower_bound)],
            ['max', s.upper_bound === undefined ? '—' : fmtNumber(s.upper_bound)],
            ['mean', s.mean == null ? '—' : fmtNumber(s.mean)],
            ['std. dev.', s.standard_deviation == null ? '—' : fmtNumber(s.standard_deviation)],
          ].filter(([, v]) => v !== '—');
          return h(
            'section',
            { class: 'card', 'data-column': name },
            h('h4', {}, name),
            kvTable(facts),
            s.histogram?.length
              ? chartBox('histogram', (el) => histogram(el, s.histogram))
              : h('p', { class: 'muted' }, 'No histogram (not a numeric column, or not asked for).'),
            // Nulls as a share of the rows, distinct values as a share of the non-null ones.
            rows && (s.null_value_count !== undefined || s.approx_count_distinct !== undefined)
              ? chartBox('null-distinct', (el) => {
                  const nulls = s.null_value_count ?? 0;
                  const pct = (part, whole) => (whole > 0 ? (100 * part) / whole : 0);
                  const shares = [pct(nulls, rows), pct(s.approx_count_distinct ?? 0, rows - nulls)];
                  return barChart(
                    el,
                    [`nulls ${fmtPct(shares[0])}`, `distinct ${fmtPct(shares[1])}`],
                    shares,
                    {
                      horizontal: true,
                      labelWidth: 124,
                      color: '#8e6bd1',
                      label: '% of rows',
                      max: 100,
                      format: fmtPct,
                    },
                  );
                })
              : '',
          );
        }),
      ),
    );
  }

  if (job.type === 'materialize-view' && r.snapshot_id !== undefined) {
    return done(
      h(
        'div',
        { id: 'result-materialize' },
        kvTable([
          ['Dataset', r.dataset_id],
          ['Snapshot', h('span', { class: 'mono', id: 'snapshot-id' }, String(r.snapshot_id))],
          ['Operation', r.operation ?? '—'],
          ['Rows written', h('span', { id: 'rows-written' }, fmtInt(r.rows_written))],
          ['Rows in the dataset', h('span', { id: 'rows-total' }, fmtInt(r.rows_total))],
          ['Rows as of', r.nio_last_modified_at ?? '—'],
          ['Recalculation', h('span', { class: 'mono' }, r.recalculation_id)],
        ]),
      ),
    );
  }

  if (job.type === 'datasets_execute_dml' && typeof r.affected_rows === 'number') {
    return done(h('div', { id: 'result-dml' }, kvTable([['Rows affected', fmtInt(r.affected_rows)]])));
  }

  if (job.type === 'model_inference_run' && r.structured_output) {
    const u = r.usage || {};
    return done(
      h(
        'div',
        { id: 'result-inference', class: 'cards' },
        h(
          'section',
          { class: 'card wide' },
          h('h4', {}, 'Structured output'),
          kvTable(
            Object.entries(r.structured_output).map(([k, v]) => [
              k,
              v !== null && typeof v === 'object'
                ? jsonTree(v)
                : typeof v === 'number'
                  ? fmtNumber(v)
                  : String(v),
            ]),
          ),
        ),
        h(
          'section',
          { class: 'card', id: 'inference-usage' },
          h('h4', {}, `Usage: ${fmtInt(u.total_tokens)} tokens`),
          chartBox('usage', (el) =>
            barChart(el, ['prompt', 'completion'], [u.prompt_tokens ?? 0, u.completion_tokens ?? 0], {
              horizontal: true,
              labelWidth: 100,
              label: 'tokens',
              color: '#0fa3b1',
            }),
          ),
        ),
      ),
    );
  }

  if (job.type === 'model_training_run' && r.result) {
    const m = r.result.metrics || {};
    const names = Object.keys(m);
    return done(
      h(
        'div',
        { id: 'result-training' },
        kvTable([
          ['Model', h('span', { class: 'mono' }, r.result.model_id)],
          ['Status', r.result.status],
        ]),
        names.length
          ? h(
              'div',
              {},
              table(
                { id: 'training-metrics' },
                ['Metric', h('th', { class: 'num' }, 'Value')],
                names.map((k) => h('tr', {}, h('td', {}, k), num(m[k]))),
              ),
              chartBox('metrics', (el) =>
                barChart(
                  el,
                  names,
                  names.map((k) => m[k]),
                  { horizontal: true, label: 'value', color: '#1f5fa8' },
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'No metrics reported.'),
      ),
    );
  }

  if (job.type === 'models_train_classifier' && r.result) {
    const fi = Object.entries(r.result.feature_importance || {}).sort((a, b) => b[1] - a[1]);
    return done(
      h(
        'div',
        { id: 'result-training' },
        kvTable([
          ['Model', h('span', { class: 'mono' }, r.result.model_name)],
          ['Accuracy', fmtNumber(r.result.accuracy)],
          ['F1 score', fmtNumber(r.result.f1_score)],
        ]),
        h('h4', {}, 'Feature importance'),
        chartBox('metrics', (el) =>
          barChart(
            el,
            fi.map(([k]) => k),
            fi.map(([, v]) => v),
            { horizontal: true, label: 'importance', color: '#1f5fa8' },
          ),
        ),
      ),
    );
  }

  if (job.type === 'models_deliver_model' && r.result) {
    const url = String(r.result.destination_url);
    const safe = /^https?:\/\//i.test(url);
    return done(
      h(
        'div',
        { id: 'result-delivery' },
        kvTable([
          [
            'Delivered to',
            safe
              ? h('a', { href: url, id: 'delivery-link', target: '_blank', rel: 'noopener noreferrer' }, url)
              : url,
          ],
          ['Status', r.result.status],
          ['Files', fmtInt(r.result.model_files_uploaded)],
          ['Size', fmtBytes(r.result.total_size_bytes)],
        ]),
      ),
    );
  }
  return null;
}
