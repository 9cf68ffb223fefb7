/**
 * Every job type of the local data plane, end to end through the daemon and the bundled control
 * plane; each result is checked against what the test computes itself with direct SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { JobAbort } from '../../src/executor/index.ts';
import { createTestContext } from '../../src/executor/testing.ts';
import { call, waitFor } from '../helpers.ts';
import { type LocalStack, n, ROWS, startLocalStack } from './support.ts';

let s: LocalStack;
beforeAll(async () => {
  s = await startLocalStack();
});
afterAll(async () => {
  await s?.stop();
});

const completed = async (type: string, input: unknown, extra: Record<string, unknown> = {}) => {
  const job = await s.settle((await s.submit(type, input, extra)).id);
  if (job.state !== 'completed')
    throw new Error(`${type} ended ${job.state}: ${JSON.stringify(job.failures)}`);
  return job.result as any;
};

const details = (overrides: Record<string, unknown> = {}) => ({
  type: 'marketplace',
  company_constraint: { type: 'inclusion', company_ids: [56] },
  data_rules: {
    attributes: [
      {
        attribute_id: 1,
        fields: [
          { field: 'unique_id.type', filter: null, exported: true },
          { field: 'unique_id.value', filter: 'include_only_if_not_null_filter', exported: true },
        ],
        optional: false,
      },
    ],
    ingestion_timestamp_filter: {
      recency: 'P30D',
      from: { type: 'inclusive', value: '2026-08-01T00:00:00Z' },
    },
  },
  pricing: { micro_cents_usd: 1_000_000_000 },
  ...overrides,
});
const AS_OF = '2026-11-01T00:00:00Z';
const exactForecastRows = async (table: string) =>
  n(
    (
      await s.q(`SELECT count(*) AS n FROM ${table} WHERE unique_id.value IS NOT NULL
        AND _nio_ingested_at >= TIMESTAMPTZ '${AS_OF}' - INTERVAL 30 DAY
        AND _nio_ingested_at >= TIMESTAMPTZ '2026-08-01T00:00:00Z' AND _nio_ingested_at <= TIMESTAMPTZ '${AS_OF}'`)
    )[0]?.n,
  );

describe('nql-forecast', () => {
  it('answers the query with its columns and rows', async () => {
    const sql =
      'SELECT country, count(*) AS events FROM company_56.dataset_424 GROUP BY country ORDER BY country';
    const r = await completed('nql-forecast', { nql: 'n/a', compiled_sql: sql });
    const expected = await s.q(sql);
    expect(r.type).toBe('Success');
    expect(r.result.columns).toEqual(['country', 'events']);
    expect(r.result.rows).toEqual(expected.map((row) => [row.country, n(row.events)]));
    expect(r.truncated).toBeUndefined();
  });

  it('caps the rows it returns and says so', async () => {
    const r = await completed('nql-forecast', {
      nql: 'n/a',
      compiled_sql: 'SELECT event_id FROM company_56.dataset_424 ORDER BY event_id',
    });
    expect(r.result.rows).toHaveLength(100);
    expect(r.result.rows[99]).toEqual([99]);
    expect(r.truncated).toBe(true);
  });

  it("answers bad SQL with the seed's Failure carrying DuckDB's message", async () => {
    const r = await completed('nql-forecast', { nql: 'n/a', compiled_sql: 'SELEC country FROM nowhere' });
    expect(r).toEqual({ type: 'Failure', msg: expect.stringMatching(/syntax error at or near "SELEC"/) });
    const missing = await completed('nql-forecast', {
      nql: 'n/a',
      compiled_sql: 'SELECT * FROM company_56.nope',
    });
    expect(missing.msg).toMatch(/Table with name nope does not exist/);
  });

  it('refuses to read files: read_csv of /etc/passwd is a permission error', async () => {
    const r = await completed('nql-forecast', {
      nql: 'n/a',
      compiled_sql: "SELECT * FROM read_csv('/etc/passwd')",
    });
    expect(r.type).toBe('Failure');
    expect(r.msg).toMatch(/Permission Error: Cannot access file "\/etc\/passwd"/);
  });
});

describe('datasets_calculate_column_stats', () => {
  it('computes exactly the enabled statistics, matching direct SQL, and persists them', async () => {
    const all = {
      nan_value_count: true,
      null_value_count: true,
      value_count: true,
      lower_bound: true,
      upper_bound: true,
      histogram: true,
      mean: true,
      standard_deviation: true,
      completeness: true,
      approx_count_distinct: true,
    };
    const r = await completed('datasets_calculate_column_stats', {
      dataset_id: 424,
      enabled_column_stats: {
        amount: { data_type: 'double', enabled_column_stats: all },
        country: { data_type: 'string', enabled_column_stats: { null_value_count: true, upper_bound: true } },
      },
    });
    const [e] = await s.q(`SELECT count(*) AS total,
        count(*) FILTER (amount IS NULL) AS nulls, count(*) FILTER (isnan(amount)) AS nans,
        min(amount) FILTER (NOT isnan(amount)) AS lo, max(amount) FILTER (NOT isnan(amount)) AS hi,
        avg(amount) FILTER (NOT isnan(amount)) AS mean, stddev_samp(amount) FILTER (NOT isnan(amount)) AS sd,
        count(DISTINCT amount) AS distinct_values, max(country) AS max_country
      FROM company_56.dataset_424`);
    const a = r.columns.amount;
    expect(a.value_count).toBe(ROWS);
    expect(a.null_value_count).toBe(n(e?.nulls));
    expect(a.null_value_count).toBeGreaterThan(0);
    expect(a.nan_value_count).toBe(n(e?.nans));
    expect(a.nan_value_count).toBeGreaterThan(0);
    expect(a.lower_bound).toBe(e?.lo);
    expect(a.upper_bound).toBe(e?.hi);
    expect(a.mean).toBeCloseTo(Number(e?.mean), 9);
    expect(a.standard_deviation).toBeCloseTo(Number(e?.sd), 9);
    expect(a.completeness).toBeCloseTo((ROWS - n(e?.nulls)) / ROWS, 12);
    expect(Math.abs(a.approx_count_distinct - n(e?.distinct_values)) / n(e?.distinct_values)).toBeLessThan(
      0.1,
    );
    expect(a.histogram).toHaveLength(10);
    expect(a.histogram.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(
      ROWS - n(e?.nulls) - n(e?.nans),
    );
    expect(a.histogram[0].lower).toBe(e?.lo);
    expect(a.histogram[9].upper).toBe(e?.hi);
    // Only what was enabled for country.
    expect(r.columns.country).toEqual({ null_value_count: 0, upper_bound: e?.max_country });
    const stored = await s.q(
      `SELECT column_name, stats::VARCHAR AS stats FROM _dpo.column_stats WHERE dataset_id = 424 ORDER BY 1`,
    );
    expect(stored.map((x) => [x.column_name, JSON.parse(String(x.stats))])).toEqual([
      ['amount', r.columns.amount],
      ['country', r.columns.country],
    ]);
  });

  it('fails without retry when a column does not exist', async () => {
    const job = await s.settle(
      (
        await s.submit('datasets_calculate_column_stats', {
          dataset_id: 424,
          enabled_column_stats: {
            nope: { data_type: 'string', enabled_column_stats: { value_count: true } },
          },
        })
      ).id,
    );
    expect(job.state).toBe('failed');
    expect(job.failures).toHaveLength(1);
    expect(job.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(job.failures[0]?.message).toMatch(/no such column in dataset 424: nope/);
  });
});

describe('forecast, forecast-internal and costs', () => {
  it('forecast samples and scales within the sampling error; its unsampled follow-up is exact', async () => {
    const denominator = 16;
    const job = await s.submit('forecast', {
      as_of: AS_OF,
      details: details(),
      dimensions: { distinct_counts: [], group_by: null },
      sample_rate_denominator: denominator,
      schedule_unsampled_forecast: true,
    });
    const done = await s.settle(job.id);
    const r = done.result as any;
    const exact = await exactForecastRows('company_56.dataset_424');
    expect(exact).toBeGreaterThan(1_000);
    // The estimate is (sampled count) × N with the count binomial(exact, 1/N): sd ≈ sqrt(exact · N).
    expect(Math.abs(r.rows - exact)).toBeLessThan(5 * Math.sqrt(exact * denominator));
    expect(r.rows % denominator).toBe(0);
    expect(r.estimator).toEqual({ type: 'sample', rate: 1 / denominator });
    expect(r.cost).toBe(Math.floor((r.rows * 1_000_000_000) / 1000));
    expect(r.datasets).toEqual([{ dataset_id: 424, rows: r.rows, cost: r.cost }]);
    expect(r.scan_cost.rows).toBe(ROWS);

    const follow = await waitFor(
      async () =>
        (
          await call<{ jobs: Job[] }>(s.cp.url, 'GET', '/v1/jobs?type=forecast-internal', {
            token: s.cp.adminToken,
          })
        ).body.jobs.find((j) => j.request_source.type === 'job' && j.request_source.job_id === job.id),
      { what: 'the forecast-internal follow-up' },
    );
    const internal = (await s.settle(follow.id)).result as any;
    expect(internal.rows).toBe(exact);
    expect(internal.estimator).toEqual({ type: 'exact' });
  });

  it('applies the company constraint (exclusion) to the catalogue', async () => {
    const r = await completed('forecast', {
      as_of: AS_OF,
      details: details({ company_constraint: { type: 'exclusion', company_ids: [56] } }),
      sample_rate_denominator: 1,
    });
    expect(r.datasets.map((d: { dataset_id: number }) => d.dataset_id)).toEqual([425]);
    expect(r.rows).toBe(await exactForecastRows('company_57.dataset_425'));
    expect(r.estimator).toEqual({ type: 'exact' });
  });

  it('costs gives the scan cost of every candidate dataset, zero for one without the attributes', async () => {
    const r = await completed('costs', { as_of: null, details: details() });
    expect(r.type).toBe('success');
    const byId = Object.fromEntries(r.cost.sources.map((x: any) => [x.source.dataset_id, x]));
    expect(Object.keys(byId).sort()).toEqual(['340', '424']);
    expect(byId[340]).toMatchObject({ rows: 0, size: 0 });
    expect(byId[424].rows).toBe(ROWS);
    expect(byId[424].size).toBeGreaterThan(ROWS);
    expect(r.cost.rows).toBe(ROWS);
  });

  it('answers a filter it cannot interpret with the failure shape', async () => {
    const d = details();
    (d.data_rules as any).attributes[0].fields[1].filter = 'fuzzy_match_filter';
    const r = await completed('costs', { as_of: null, details: d });
    expect(r).toEqual({ type: 'failure', msg: expect.stringMatching(/fuzzy_match_filter/) });
  });
});

describe('dataset tables', () => {
  it('create, DML with exact counts, sample, truncate and delete', async () => {
    await completed('datasets_create_table', {
      dataset_id: 1234,
      compiled_sql:
        'CREATE TABLE company_56.dataset_1234 (id STRING, country STRING, created_at TIMESTAMP_TZ) CLUSTER BY (created_at)',
    });
    expect(await s.q(`SELECT dataset_id, company_id FROM _dpo.datasets WHERE dataset_id = 1234`)).toEqual([
      { dataset_id: 1234n, company_id: 56n },
    ]);
    const insert = await completed('datasets_execute_dml', {
      dataset_id: 1234,
      nql: 'n/a',
      compiled_sql:
        "INSERT INTO company_56.dataset_1234 SELECT unique_id.value, country, event_timestamp FROM company_56.dataset_424 WHERE country IN ('FR', 'DE')",
      nio_last_modified_at: AS_OF,
    });
    const [fr] = await s.q(`SELECT count(*) AS n FROM company_56.dataset_424 WHERE country IN ('FR', 'DE')`);
    expect(insert).toEqual({ type: 'datasets_execute_dml', affected_rows: n(fr?.n) });
    const [de] = await s.q(`SELECT count(*) AS n FROM company_56.dataset_1234 WHERE country = 'DE'`);
    const del = await completed('datasets_execute_dml', {
      dataset_id: 1234,
      nql: 'n/a',
      compiled_sql: "DELETE FROM company_56.dataset_1234 WHERE country = 'DE'",
      nio_last_modified_at: AS_OF,
    });
    expect(del.affected_rows).toBe(n(de?.n));
    expect(del.affected_rows).toBeGreaterThan(0);

    const sample = await completed('datasets_sample', { dataset_id: 1234, sample_size: 250 });
    expect(sample).toMatchObject({ type: 'datasets_sample', rows: 250 });
    const [outside] = await s.q(
      `SELECT count(*) AS n FROM (SELECT * FROM _samples.dataset_1234 EXCEPT ALL SELECT * FROM company_56.dataset_1234)`,
    );
    expect(n(outside?.n)).toBe(0);

    await completed('datasets_truncate_table', { dataset_id: 1234 });
    expect(n((await s.q('SELECT count(*) AS n FROM company_56.dataset_1234'))[0]?.n)).toBe(0);
    // The sample is stored apart from the dataset and survives its truncation.
    expect(n((await s.q('SELECT count(*) AS n FROM _samples.dataset_1234'))[0]?.n)).toBe(250);

    await completed('datasets_delete_table', {
      external_id: 'company_56.dataset_1234',
      is_narrative_managed: true,
    });
    expect(
      await s.q(
        `SELECT table_name FROM duckdb_tables() WHERE table_name IN ('dataset_1234') AND schema_name <> 'main'`,
      ),
    ).toEqual([]);
    expect(await s.q('SELECT * FROM _dpo.datasets WHERE dataset_id = 1234')).toEqual([]);
  });

  it('bad SQL is a non-retryable failure carrying DuckDB’s message', async () => {
    const job = await s.settle(
      (
        await s.submit('datasets_execute_dml', {
          dataset_id: 424,
          nql: 'n/a',
          compiled_sql: 'UPDATE company_56.dataset_424 SET country = WHERE',
          nio_last_modified_at: AS_OF,
        })
      ).id,
    );
    expect(job.state).toBe('failed');
    expect(job.failures).toHaveLength(1);
    expect(job.failures[0]).toMatchObject({ code: 'SQL_ERROR', retryable: false });
    expect(job.failures[0]?.message).toMatch(/Parser Error: syntax error/);
  });

  it('DML cannot read files either, and a DDL is not DML', async () => {
    const passwd = await s.settle(
      (
        await s.submit('datasets_execute_dml', {
          dataset_id: 424,
          nql: 'n/a',
          compiled_sql: "INSERT INTO company_56.dataset_424 (country) SELECT * FROM read_csv('/etc/passwd')",
          nio_last_modified_at: AS_OF,
        })
      ).id,
    );
    expect(passwd.failures[0]?.message).toMatch(/Permission Error/);
    const drop = await s.settle(
      (
        await s.submit('datasets_execute_dml', {
          dataset_id: 424,
          nql: 'n/a',
          compiled_sql: 'DROP TABLE company_56.dataset_424',
          nio_last_modified_at: AS_OF,
        })
      ).id,
    );
    expect(drop.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(n((await s.q('SELECT count(*) AS n FROM company_56.dataset_424'))[0]?.n)).toBe(ROWS);
  });

  it("create_table may only create the job's own dataset table", async () => {
    const job = await s.settle(
      (
        await s.submit('datasets_create_table', {
          dataset_id: 77,
          compiled_sql: 'CREATE TABLE company_57.dataset_77 (id INTEGER)',
        })
      ).id,
    );
    expect(job.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(job.failures[0]?.message).toMatch(/company_56\.dataset_77/);
  });
});

describe('materialize-view and the billing job', () => {
  const mv = (compiledSelect: string, extra: Record<string, unknown> = {}) => ({
    nql: 'n/a',
    compiled_select: compiledSelect,
    dataset_id: 3000,
    stats_enabled: false,
    ...extra,
  });
  const cols = 'event_id, country, amount, _nio_access_rule_id, _nio_price_per_row';

  it('writes snapshots (replace, append, partition merge); earlier snapshots stay readable', async () => {
    const first = await completed(
      'materialize-view',
      mv(`SELECT ${cols} FROM company_56.dataset_424 WHERE country = 'DE'`, { first_run: true }),
    );
    const [de] = await s.q(`SELECT count(*) AS n FROM company_56.dataset_424 WHERE country = 'DE'`);
    expect(first).toMatchObject({ dataset_id: 3000, operation: 'replace', rows_written: n(de?.n) });

    const second = await completed(
      'materialize-view',
      mv(`SELECT ${cols} FROM company_56.dataset_424 WHERE country = 'FR'`, {
        first_run: false,
        merge: false,
      }),
    );
    expect(second.operation).toBe('append');
    expect(BigInt(second.snapshot_id)).toBeGreaterThan(BigInt(first.snapshot_id));
    const [both] = await s.q(
      `SELECT count(*) AS n FROM company_56.dataset_424 WHERE country IN ('DE', 'FR')`,
    );
    expect(n((await s.q('SELECT count(*) AS n FROM company_56.dataset_3000'))[0]?.n)).toBe(n(both?.n));

    // Merge over the country partition: DE is replaced by its subset, FR is untouched.
    const third = await completed(
      'materialize-view',
      mv(`SELECT ${cols} FROM company_56.dataset_424 WHERE country = 'DE' AND amount > 500`, {
        first_run: false,
        merge: true,
        partitions: [{ field: 'country', fn: 'identity', args: [] }],
      }),
    );
    expect(third.operation).toBe('merge');
    const diff = await s.q(`
      (SELECT event_id FROM company_56.dataset_3000
        EXCEPT SELECT event_id FROM company_56.dataset_424 WHERE country = 'FR' OR (country = 'DE' AND amount > 500))
      UNION ALL
      (SELECT event_id FROM company_56.dataset_424 WHERE country = 'FR' OR (country = 'DE' AND amount > 500)
        EXCEPT SELECT event_id FROM company_56.dataset_3000)`);
    expect(diff).toEqual([]);

    // Snapshot 1 still holds exactly the first run's rows.
    const snap1 = `_snapshots.dataset_3000_${first.snapshot_id}`;
    expect(n((await s.q(`SELECT count(*) AS n FROM ${snap1}`))[0]?.n)).toBe(n(de?.n));
    expect(await s.q(`SELECT DISTINCT country FROM ${snap1}`)).toEqual([{ country: 'DE' }]);

    // The control plane enqueued the billing job after the last refresh: it bills that refresh's rows.
    const billing = await waitFor(
      async () =>
        (
          await call<{ jobs: Job[] }>(
            s.cp.url,
            'GET',
            '/v1/jobs?type=materialized_views_collect_access_rules_billing_data',
            { token: s.cp.adminToken },
          )
        ).body.jobs.find(
          (j) =>
            (j.input as { nio_last_modified_at: string }).nio_last_modified_at === third.nio_last_modified_at,
        ),
      { what: 'the billing follow-up' },
    );
    const bill = (await s.settle(billing.id)).result as any;
    const expected =
      await s.q(`SELECT _nio_access_rule_id AS id, count(*) AS rows, any_value(_nio_price_per_row) AS price
      FROM company_56.dataset_424 WHERE country = 'DE' AND amount > 500 GROUP BY 1 ORDER BY 1`);
    expect(bill.sources).toEqual(
      expected.map((e) => ({
        access_rule_id: n(e.id),
        rows: n(e.rows),
        price_per_row: { micro_cents_usd: n(e.price) },
      })),
    );
  });

  it('chunks of a batch survive a daemon restart between them and are written once each', async () => {
    const batch = '7d0c4a52-5f8e-4b7e-9a55-3f0f9b0e2c11';
    const chunk = (number: number, country: string) =>
      mv(`SELECT ${cols} FROM company_56.dataset_424 WHERE country = '${country}'`, {
        dataset_id: 3100,
        first_run: true,
        chunk_metadata: { batch_id: batch, chunk_sequence: { number, of: 3 } },
      });
    const c1 = await completed('materialize-view', chunk(1, 'US'));
    expect(c1.operation).toBe('replace');
    await s.restart();
    const c2 = await completed('materialize-view', chunk(2, 'GB'));
    expect(c2.operation).toBe('append');
    // The same chunk delivered again (as a new job) is not written twice.
    const again = await completed('materialize-view', chunk(2, 'GB'));
    expect(again.snapshot_id).toBe(c2.snapshot_id);
    await s.restart();
    const c3 = await completed('materialize-view', chunk(3, 'JP'));
    expect(new Set([c1.recalculation_id, c2.recalculation_id, c3.recalculation_id]).size).toBe(1);
    const got = await s.q('SELECT country, count(*) AS n FROM company_56.dataset_3100 GROUP BY 1 ORDER BY 1');
    const want = await s.q(
      `SELECT country, count(*) AS n FROM company_56.dataset_424 WHERE country IN ('US', 'GB', 'JP') GROUP BY 1 ORDER BY 1`,
    );
    expect(got).toEqual(want);
    expect(
      await s.q(`SELECT chunk_number FROM _dpo.snapshots WHERE dataset_id = 3100 ORDER BY snapshot_id`),
    ).toEqual([{ chunk_number: 1 }, { chunk_number: 2 }, { chunk_number: 3 }]);
  });

  it('a select ending in a semicolon is fine; a billing query that writes is refused', async () => {
    const r = await completed(
      'materialize-view',
      mv(`SELECT ${cols} FROM company_56.dataset_424 WHERE country = 'CA';  `, {
        dataset_id: 3200,
        first_run: true,
      }),
    );
    expect(r.operation).toBe('replace');
    // Internal types cannot be submitted by users: run it on the executor directly.
    await expect(
      s.executor.execute(
        {
          id: '00000000-0000-4000-8000-00000000b111',
          type: 'materialized_views_collect_access_rules_billing_data',
          attempt: 1,
          maxAttempts: 1,
          companyId: 56,
          dataPlaneId: 'dp',
          input: { dataset_id: 3200, compiled_query: 'DELETE FROM company_56.dataset_3200' },
        },
        createTestContext().ctx,
      ),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(n((await s.q('SELECT count(*) AS n FROM company_56.dataset_3200'))[0]?.n)).toBe(r.rows_total);
  });

  it('a select that does not bind fails without retry', async () => {
    const job = await s.settle(
      (await s.submit('materialize-view', mv('SELECT no_such_column FROM company_56.dataset_424'))).id,
    );
    expect(job.state).toBe('failed');
    expect(job.failures[0]).toMatchObject({ code: 'SQL_ERROR', retryable: false });
    expect(job.failures[0]?.message).toMatch(/no_such_column/);
  });
});

describe('cancel', () => {
  it('interrupts a long query and reports cancelled; the data plane keeps working', async () => {
    const job = await s.submit('nql-forecast', {
      nql: 'n/a',
      compiled_sql: 'SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3',
    });
    await waitFor(async () => (await s.get(job.id)).state === 'running', { what: 'the query to start' });
    const r = await call(s.cp.url, 'POST', `/v1/jobs/${job.id}/cancel`, {
      token: s.cp.adminToken,
      body: { reason: 'test' },
    });
    expect(r.status).toBe(200);
    // A trillion rows take hours; ending at all means the query was interrupted.
    const done = await s.settle(job.id);
    expect(done.state).toBe('cancelled');
    expect(done.result).toBeNull();
    const after = await completed('nql-forecast', { nql: 'n/a', compiled_sql: 'SELECT 41 + 1 AS answer' });
    expect(after.result.rows).toEqual([[42]]);
  });

  it('an abort landing at any moment (while connecting, before, between or during statements) stops the job', async () => {
    const endless = 'SELECT a.range AS x FROM range(1000000000000) a WHERE a.range % 7 = 3';
    const jobs = [
      { type: 'nql-forecast', input: { nql: 'n/a', compiled_sql: `SELECT count(*) FROM (${endless})` } },
      {
        type: 'materialize-view',
        input: {
          nql: 'n/a',
          compiled_select: endless,
          dataset_id: 3900,
          stats_enabled: false,
          first_run: true,
        },
      },
    ];
    let k = 0;
    for (const { type, input } of jobs) {
      for (const delayMs of [-1, 0, 1, 2, 5, 10, 25, 50]) {
        const t = createTestContext();
        const running = s.executor.execute(
          {
            id: `00000000-0000-4000-8000-${String(++k).padStart(12, '0')}`,
            type,
            attempt: 1,
            maxAttempts: 1,
            companyId: 56,
            dataPlaneId: 'dp',
            input,
          },
          t.ctx,
        );
        const abort = () => t.abort('cancel');
        if (delayMs < 0) abort();
        else setTimeout(abort, delayMs);
        await expect(running, `${type}: abort after ${delayMs} ms`).rejects.toBeInstanceOf(JobAbort);
      }
    }
    // Nothing was committed.
    expect(await s.q('SELECT * FROM _dpo.snapshots WHERE dataset_id = 3900')).toEqual([]);
  });
});
