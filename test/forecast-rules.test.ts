/**
 * The forecast rules, decided once (src/catalogue/forecast-rules.ts) and rendered by each data plane:
 * the ISO 8601 duration parser, the plan built from a job's input (each predicate kind), and the two
 * renderers agreeing on what the plan means.
 */
import { describe, expect, it } from 'vitest';
import { forecastPlan, sparkInterval } from '../executors/emr-serverless/spec.ts';
import { estimate, isoToInterval } from '../executors/local/forecast.ts';
import { IsoDuration } from '../src/catalogue/common.ts';
import {
  costOf,
  DurationError,
  durationTerms,
  type ForecastRulesInput,
  forecastRules,
  INGESTED_AT,
  parseDuration,
} from '../src/catalogue/forecast-rules.ts';

const input = (
  ts: Record<string, unknown> | null = null,
  extra: Record<string, unknown> = {},
): ForecastRulesInput =>
  ({
    as_of: '2024-03-01T00:00:00Z',
    details: {
      type: 'marketplace',
      company_constraint: { type: 'inclusion', company_ids: [56, 57] },
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
          {
            attribute_id: 7,
            fields: [
              { field: 'email', filter: 'include_only_if_not_null_filter', exported: true },
              { field: 'email.domain', filter: 'fuzzy_match_filter', exported: false },
            ],
          },
        ],
        ingestion_timestamp_filter: ts,
      },
      pricing: { micro_cents_usd: 2_500 },
    },
    sample_rate_denominator: 16,
    ...extra,
  }) as ForecastRulesInput;

describe('ISO 8601 durations', () => {
  it.each([
    ['P30D', { days: 30 }],
    ['P2W', { days: 14 }],
    ['P1W2D', { days: 9 }],
    ['P0D', { days: 0 }],
    ['P1M', { months: 1 }],
    ['PT1M', { minutes: 1 }],
    ['PT12H', { hours: 12 }],
    ['PT0.25S', { seconds: 0.25 }],
    ['P1Y2M3W4DT5H6M7.5S', { years: 1, months: 2, days: 25, hours: 5, minutes: 6, seconds: 7.5 }],
  ])('reads %s', (iso, expected) => {
    expect(parseDuration(iso)).toEqual(expected);
  });

  it.each([
    'P',
    'PT',
    'P1DT',
    '30 days',
    '',
    'p30d',
    'P-1D',
    'P1.5D',
    'P1H',
    'PT1D',
    'P1D2Y',
    ' P1D',
    'P1D ',
    '1D',
  ])('refuses %j with a DurationError naming it', (iso) => {
    expect(() => parseDuration(iso)).toThrow(DurationError);
    expect(() => parseDuration(iso)).toThrow(`cannot read the duration '${iso}'`);
  });

  it('reads every duration the job schema admits', () => {
    for (const iso of ['P30D', 'PT12H', 'P1Y2M', 'P1W', 'P1Y2M3W4DT5H6M7.5S', 'PT0.5S']) {
      expect(IsoDuration.safeParse(iso).success).toBe(true);
      expect(() => parseDuration(iso)).not.toThrow();
    }
  });

  it('lists the terms largest unit first; an empty duration is zero seconds', () => {
    expect(durationTerms(parseDuration('PT7S'))).toEqual([{ amount: 7, unit: 'seconds' }]);
    expect(durationTerms({ seconds: 1, years: 2, days: 3 })).toEqual([
      { amount: 2, unit: 'years' },
      { amount: 3, unit: 'days' },
      { amount: 1, unit: 'seconds' },
    ]);
    expect(durationTerms({})).toEqual([{ amount: 0, unit: 'seconds' }]);
  });

  it('renders the same duration in DuckDB and Spark SQL', () => {
    expect(isoToInterval('P1Y2M3W4DT5H6M7.5S')).toBe(
      "INTERVAL '1 years 2 months 25 days 5 hours 6 minutes 7.5 seconds'",
    );
    expect(sparkInterval('P1Y2M3W4DT5H6M7.5S')).toBe(
      'INTERVAL 1 YEARS 2 MONTHS 25 DAYS 5 HOURS 6 MINUTES 7.5 SECONDS',
    );
    expect(isoToInterval('PT0S')).toBe("INTERVAL '0 seconds'");
    expect(sparkInterval('P0D')).toBe('INTERVAL 0 DAYS');
    expect(() => isoToInterval('30 days')).toThrow(DurationError);
    expect(() => sparkInterval('30 days')).toThrow(DurationError);
  });
});

describe('the forecast plan', () => {
  it('admits the companies of an inclusion, all but those of an exclusion, every company without one', () => {
    expect(forecastRules(input(), 'exact').candidates).toEqual([
      { kind: 'in', column: 'company_id', values: [56, 57], negated: false },
    ]);
    const exclusion = input();
    exclusion.details.company_constraint = { type: 'exclusion', company_ids: [3] };
    expect(forecastRules(exclusion, 'exact').candidates).toEqual([
      { kind: 'in', column: 'company_id', values: [3], negated: true },
    ]);
    const none = input();
    none.details.company_constraint = null;
    expect(forecastRules(none, 'exact').candidates).toEqual([]);
  });

  it('keeps not-null field filters as paths, lists unknown filters, defaults optional to false', () => {
    expect(forecastRules(input(), 'exact').attributes).toEqual([
      {
        attribute_id: 1,
        optional: false,
        where: [{ kind: 'not_null', path: ['unique_id', 'value'] }],
        unsupported: [],
      },
      {
        attribute_id: 7,
        optional: false,
        where: [{ kind: 'not_null', path: ['email'] }],
        unsupported: [{ field: 'email.domain', filter: 'fuzzy_match_filter' }],
      },
    ]);
  });

  it('orders the ingestion predicates recency, from/until, then the as_of cap', () => {
    const plan = forecastRules(
      input({
        recency: 'P30D',
        from: { type: 'inclusive', value: '2024-01-01T00:00:00Z' },
        until: { type: 'exclusive', value: '2024-02-01T00:00:00Z' },
      }),
      'exact',
    );
    expect(plan.ingestionColumn).toBe(INGESTED_AT);
    expect(plan.ingestion).toEqual([
      { kind: 'since', column: INGESTED_AT, duration: { days: 30 }, reference: '2024-03-01T00:00:00Z' },
      {
        kind: 'range',
        column: INGESTED_AT,
        from: { value: '2024-01-01T00:00:00Z', inclusive: true },
        until: { value: '2024-02-01T00:00:00Z', inclusive: false },
      },
      {
        kind: 'range',
        column: INGESTED_AT,
        from: null,
        until: { value: '2024-03-01T00:00:00Z', inclusive: true },
      },
    ]);
  });

  it('measures recency from now without an as_of, and caps at as_of only when there is a filter', () => {
    const now = forecastRules(
      input({ recency: 'PT6H', from: { type: 'exclusive', value: '2024-01-01T00:00:00Z' } }, { as_of: null }),
      'exact',
    );
    expect(now.ingestion).toEqual([
      { kind: 'since', column: INGESTED_AT, duration: { hours: 6 }, reference: null },
      {
        kind: 'range',
        column: INGESTED_AT,
        from: { value: '2024-01-01T00:00:00Z', inclusive: false },
        until: null,
      },
    ]);
    expect(forecastRules(input(null), 'exact').ingestion).toEqual([]);
    // An empty filter still leaves out what was ingested after as_of.
    expect(forecastRules(input({}), 'exact').ingestion).toEqual([
      {
        kind: 'range',
        column: INGESTED_AT,
        from: null,
        until: { value: '2024-03-01T00:00:00Z', inclusive: true },
      },
    ]);
  });

  it('samples 1 in N only in sampled mode and only when N > 1', () => {
    expect(forecastRules(input(), 'sampled')).toMatchObject({
      sampleDenominator: 16,
      estimator: { type: 'sample', rate: 1 / 16 },
    });
    for (const mode of ['exact', 'costs'] as const)
      expect(forecastRules(input(), mode)).toMatchObject({
        mode,
        sampleDenominator: 1,
        estimator: { type: 'exact' },
      });
    expect(forecastRules(input(null, { sample_rate_denominator: 1 }), 'sampled')).toMatchObject({
      sampleDenominator: 1,
      estimator: { type: 'exact' },
    });
  });

  it('prices per thousand rows, rounded down', () => {
    expect(forecastRules(input(), 'exact').pricePer1000Rows).toBe(2_500);
    expect(costOf(3, 2_500)).toBe(7);
    expect(costOf(1_000, 2_500)).toBe(2_500);
    expect(costOf(0, 2_500)).toBe(0);
  });

  it('refuses a recency it cannot read', () => {
    expect(() => forecastRules(input({ recency: '30 days' }), 'exact')).toThrow(
      new DurationError("cannot read the duration '30 days'"),
    );
  });
});

describe('the renderers', () => {
  it('Spark: the plan as the runner reads it', () => {
    const plan = forecastPlan(
      input({
        recency: 'P1W',
        from: { type: 'exclusive', value: '2024-01-01T00:00:00Z' },
        until: { type: 'exclusive', value: '2024-02-01T00:00:00Z' },
      }),
      'sampled',
    );
    expect(plan).toMatchObject({
      company_predicate: 'company_id IN (56, 57)',
      attributes: [
        { attribute_id: 1, optional: false, not_null: ['`unique_id`.`value`'] },
        { attribute_id: 7, optional: false, not_null: ['`email`'] },
      ],
      ingestion_predicate:
        "_nio_ingested_at >= TIMESTAMP '2024-03-01T00:00:00Z' - INTERVAL 7 DAYS" +
        " AND _nio_ingested_at > TIMESTAMP '2024-01-01T00:00:00Z'" +
        " AND _nio_ingested_at < TIMESTAMP '2024-02-01T00:00:00Z'" +
        " AND _nio_ingested_at <= TIMESTAMP '2024-03-01T00:00:00Z'",
      sample_fraction: 1 / 16,
      scale: 16,
      unsupported_filters: ['fuzzy_match_filter'],
    });
    const none = input({ recency: 'P1D' }, { as_of: null });
    none.details.company_constraint = null;
    expect(forecastPlan(none, 'exact')).toMatchObject({
      company_predicate: 'true',
      ingestion_predicate: '_nio_ingested_at >= current_timestamp() - INTERVAL 1 DAYS',
    });
    expect(() => forecastPlan(input({ recency: 'soon' }), 'exact')).toThrow(
      "cannot read the duration 'soon'",
    );
  });

  it('DuckDB: a duration it cannot read is a failure result, not an error', async () => {
    const job = { id: 'j', type: 'forecast', input: input({ recency: '30 days' }) } as any;
    const ctx = { signal: new AbortController().signal, progress: () => {} } as any;
    await expect(estimate({} as any, job, 'sampled', ctx)).resolves.toEqual({
      type: 'failure',
      msg: "cannot read the duration '30 days'",
    });
  });
});
