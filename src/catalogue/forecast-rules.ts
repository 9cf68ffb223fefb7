/**
 * The forecast rules — which rows a `forecast`, `forecast-internal` or `costs` job counts — decided
 * once, here, as a dialect-neutral plan. Each data plane only renders the plan in its own SQL (DuckDB
 * in executors/local/forecast.ts, Spark SQL in executors/emr-serverless/spec.ts), so the data planes
 * cannot drift apart, and another dialect (Snowflake, say) needs a renderer and nothing else.
 *
 * The rules:
 * - candidate datasets: catalogue rows whose company the `company_constraint` admits. Inclusion:
 *   `company_id` in the list; exclusion: not in it; no constraint: every company. An empty list
 *   admits no company, inclusion or exclusion alike (renderers write `IN (NULL)`, which no row
 *   satisfies, negated or not);
 * - attributes: a dataset lacking a non-optional attribute contributes no rows (how a data plane
 *   tells that a dataset carries an attribute is its own business: the local one looks for a column
 *   named as the attribute);
 * - field filters: `include_only_if_not_null_filter` keeps rows whose field is not null, for each
 *   attribute the dataset carries; `null` is no filter; any other name is unsupported: the plan lists
 *   it and the data plane answers `{type: 'failure'}` naming it. A field path (`unique_id.value`) is
 *   kept as its segments: the first names the column, the rest struct fields;
 * - ingestion timestamp (`_nio_ingested_at`): `recency` keeps rows ingested at or after
 *   (`as_of`, or now) minus the duration; `from` is a lower bound (`>=` inclusive, `>` exclusive),
 *   `until` an upper one (`<=`, `<`); when the job has an `as_of` and any ingestion filter (even an
 *   empty one), rows ingested after `as_of` are left out. In that order. When any of these applies, a
 *   dataset without the column contributes no rows;
 * - sampling: `sampled` (a `forecast`) counts a Bernoulli sample at 1/sample_rate_denominator and
 *   scales the count by the denominator (estimator `sample` at that rate); a denominator of 1,
 *   `exact` (`forecast-internal`) and `costs` count every row (estimator `exact`);
 * - cost = rows × pricing.micro_cents_usd / 1000 (the price is per thousand rows), rounded down.
 *
 * Durations are ISO 8601 (`P1Y2M3W4DT5H6M7.5S`): years, months, weeks (7 days each), days, hours,
 * minutes, seconds (the only fractional part). Months and years stay calendar units.
 */
import { ISO_DURATION } from './common.ts';
import type { CostsInput, ForecastInput } from './forecasting.ts';

export type EstimateMode = 'sampled' | 'exact' | 'costs';

/** The column every event table carries: when the row was ingested. */
export const INGESTED_AT = '_nio_ingested_at';
/** The one field filter the rules know. */
export const NOT_NULL_FILTER = 'include_only_if_not_null_filter';

// --- durations ------------------------------------------------------------------------------------

/** A duration that cannot be read; data planes turn it into their own failure. */
export class DurationError extends Error {
  override name = 'DurationError';
}

export type DurationUnit = 'years' | 'months' | 'days' | 'hours' | 'minutes' | 'seconds';
/** A parsed duration: the units it names (weeks folded into days), absent units left out. */
export type Duration = Partial<Record<DurationUnit, number>>;

/** An ISO 8601 duration, or a DurationError `cannot read the duration '<text>'`. */
export function parseDuration(iso: string): Duration {
  const m = ISO_DURATION.exec(iso);
  if (!m) throw new DurationError(`cannot read the duration '${iso}'`);
  const [, y, mo, w, d, h, mi, s] = m;
  const out: Duration = {};
  if (y !== undefined) out.years = Number(y);
  if (mo !== undefined) out.months = Number(mo);
  if (w !== undefined || d !== undefined) out.days = Number(w ?? 0) * 7 + Number(d ?? 0);
  if (h !== undefined) out.hours = Number(h);
  if (mi !== undefined) out.minutes = Number(mi);
  if (s !== undefined) out.seconds = Number(s);
  return out;
}

const UNITS: readonly DurationUnit[] = ['years', 'months', 'days', 'hours', 'minutes', 'seconds'];

/** The terms of a duration, largest unit first, for an interval literal; `P`/`PT` is 0 seconds. */
export function durationTerms(d: Duration): Array<{ amount: number; unit: DurationUnit }> {
  const terms = UNITS.flatMap((unit) => (d[unit] === undefined ? [] : [{ amount: d[unit], unit }]));
  return terms.length > 0 ? terms : [{ amount: 0, unit: 'seconds' }];
}

// --- the plan -------------------------------------------------------------------------------------

/** A condition on the dataset catalogue: which datasets are candidates. */
export type CataloguePredicate = { kind: 'in'; column: 'company_id'; values: number[]; negated: boolean };

/** A timestamp bound; `value` is an ISO 8601 timestamp with offset. */
export interface Bound {
  value: string;
  inclusive: boolean;
}

/** A condition on the rows of a dataset. */
export type RowPredicate =
  /** The field (column, then struct fields) is not null. */
  | { kind: 'not_null'; path: string[] }
  /** `column >= reference - duration`; a null reference is the time the query runs. */
  | { kind: 'since'; column: string; duration: Duration; reference: string | null }
  /** `column` within the bounds that are given (at least one is). */
  | { kind: 'range'; column: string; from: Bound | null; until: Bound | null };

export interface AttributePlan {
  attribute_id: number;
  optional: boolean;
  /** Applied only to datasets carrying the attribute (not_null predicates). */
  where: RowPredicate[];
  /** Filters the rules do not know, in the job's order. */
  unsupported: Array<{ field: string; filter: string }>;
}

export interface ForecastRules {
  mode: EstimateMode;
  /** All hold for a candidate dataset; none: every dataset. */
  candidates: CataloguePredicate[];
  attributes: AttributePlan[];
  /** The column the ingestion predicates read; a dataset without it contributes no rows when they exist. */
  ingestionColumn: string;
  /** All hold for a counted row. */
  ingestion: RowPredicate[];
  /** Count 1 row in N and scale by N; 1 counts every row. */
  sampleDenominator: number;
  estimator: { type: 'sample'; rate: number } | { type: 'exact' };
  /** micro-cents (USD) per thousand rows. */
  pricePer1000Rows: number;
}

/** The input the rules read (forecast and forecast-internal; costs has no sampling). */
export type ForecastRulesInput = ForecastInput | CostsInput;

/** The job's rules as a plan; throws a DurationError for a recency it cannot read. */
export function forecastRules(input: ForecastRulesInput, mode: EstimateMode): ForecastRules {
  const { details } = input;
  const c = details.company_constraint;
  const candidates: CataloguePredicate[] = c
    ? [
        {
          kind: 'in',
          column: 'company_id',
          values: c.company_ids.map((n) => Math.trunc(n)),
          negated: c.type === 'exclusion',
        },
      ]
    : [];

  const attributes = details.data_rules.attributes.map(
    (a): AttributePlan => ({
      attribute_id: a.attribute_id,
      optional: a.optional === true,
      where: a.fields
        .filter((f) => f.filter === NOT_NULL_FILTER)
        .map((f) => ({ kind: 'not_null', path: f.field.split('.') })),
      unsupported: a.fields.flatMap((f) =>
        f.filter !== null && f.filter !== NOT_NULL_FILTER ? [{ field: f.field, filter: f.filter }] : [],
      ),
    }),
  );

  const asOf = input.as_of || null;
  const ts = details.data_rules.ingestion_timestamp_filter;
  const ingestion: RowPredicate[] = [];
  if (ts?.recency)
    ingestion.push({
      kind: 'since',
      column: INGESTED_AT,
      duration: parseDuration(ts.recency),
      reference: asOf,
    });
  if (ts?.from || ts?.until)
    ingestion.push({
      kind: 'range',
      column: INGESTED_AT,
      from: ts.from ? { value: ts.from.value, inclusive: ts.from.type === 'inclusive' } : null,
      until: ts.until ? { value: ts.until.value, inclusive: ts.until.type === 'inclusive' } : null,
    });
  if (asOf && ts)
    ingestion.push({
      kind: 'range',
      column: INGESTED_AT,
      from: null,
      until: { value: asOf, inclusive: true },
    });

  const denominator =
    mode === 'sampled' && 'sample_rate_denominator' in input ? Number(input.sample_rate_denominator ?? 1) : 1;
  return {
    mode,
    candidates,
    attributes,
    ingestionColumn: INGESTED_AT,
    ingestion,
    sampleDenominator: denominator,
    estimator: denominator > 1 ? { type: 'sample', rate: 1 / denominator } : { type: 'exact' },
    pricePer1000Rows: details.pricing.micro_cents_usd,
  };
}

/** What `rows` cost at `pricePer1000Rows`, rounded down. */
export const costOf = (rows: number, pricePer1000Rows: number) =>
  Math.floor((rows * pricePer1000Rows) / 1000);
