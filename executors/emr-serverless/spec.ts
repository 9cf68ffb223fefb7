/**
 * The contract between the operator and the Spark job runner (runner/README.md): the job spec the
 * operator writes to S3 before StartJobRun, and the files the runner writes back. Every decision
 * that can be made here is made here (and tested), so the runner stays a thin interpreter: the
 * forecast's company, attribute and ingestion rules (decided in src/catalogue/forecast-rules.ts, shared
 * with the local data plane) are rendered here as Spark SQL predicates, the sampling fraction and
 * pricing are computed, the row cap is fixed.
 */
import { z } from 'zod';
import {
  type CataloguePredicate,
  type Duration,
  durationTerms,
  type EstimateMode,
  type ForecastRulesInput,
  forecastRules,
  parseDuration,
  type RowPredicate,
} from '../../src/catalogue/forecast-rules.ts';
import type { JobHandle } from '../../src/executor/index.ts';

export const SPEC_VERSION = 1;

/** Where one submission's files live: `<prefix>/jobs/<job id>/<nonce>-<submission>/`. */
export function runPrefix(prefix: string, jobId: string, nonce: string, submission: number): string {
  return `${prefix ? `${prefix}/` : ''}jobs/${jobId}/${nonce}-${submission}`;
}

/** What the runner writes when it fails in a way it understands (else EMR's stateDetails speak). */
export const RunnerError = z.object({
  /** `query`: the SQL or the data is wrong (not retried); `capacity`/`internal`: worth another try. */
  kind: z.enum(['query', 'capacity', 'internal']),
  message: z.string(),
});
export type RunnerError = z.infer<typeof RunnerError>;

/** A SQL string literal for Spark SQL. */
const lit = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
/** A Spark SQL identifier. */
const id = (s: string) => `\`${s.replaceAll('`', '``')}\``;

/** A column name as written: bare when it is a plain identifier, else quoted. */
const column = (s: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? s : id(s));

/** A duration as a Spark SQL interval literal. */
const interval = (d: Duration) =>
  `INTERVAL ${durationTerms(d)
    .map((t) => `${t.amount} ${t.unit.toUpperCase()}`)
    .join(' ')}`;

/** An ISO 8601 duration as a Spark SQL interval literal; a DurationError when it cannot be read. */
export const sparkInterval = (iso: string): string => interval(parseDuration(iso));

const timestamp = (value: string) => `TIMESTAMP ${lit(value)}`;
/** A field path: `unique_id.value` → `unique_id`.`value`. */
const field = (path: readonly string[]) => path.map(id).join('.');

function cataloguePredicate(p: CataloguePredicate): string {
  const values = p.values.map(String).join(', ') || 'NULL';
  return `${column(p.column)} ${p.negated ? 'NOT IN' : 'IN'} (${values})`;
}

/** A row predicate as Spark SQL conditions. */
function rowConditions(p: RowPredicate): string[] {
  switch (p.kind) {
    case 'not_null':
      return [`${field(p.path)} IS NOT NULL`];
    case 'since':
      return [
        `${column(p.column)} >= ${p.reference ? timestamp(p.reference) : 'current_timestamp()'} - ${interval(p.duration)}`,
      ];
    case 'range':
      return [
        p.from && `${column(p.column)} ${p.from.inclusive ? '>=' : '>'} ${timestamp(p.from.value)}`,
        p.until && `${column(p.column)} ${p.until.inclusive ? '<=' : '<'} ${timestamp(p.until.value)}`,
      ].filter((x): x is string => Boolean(x));
  }
}

/**
 * The forecast's rules as the runner's plan, in Spark SQL: which catalogue rows are candidates, which
 * columns a dataset must have, which rows count. `not_null` carries bare field expressions (the
 * runner appends `IS NOT NULL`).
 */
export function forecastPlan(input: ForecastRulesInput, mode: EstimateMode) {
  const rules = forecastRules(input, mode);
  const ingestion = rules.ingestion.flatMap(rowConditions);
  return {
    mode,
    company_predicate: rules.candidates.map(cataloguePredicate).join(' AND ') || 'true',
    attributes: rules.attributes.map((a) => ({
      attribute_id: a.attribute_id,
      optional: a.optional,
      not_null: a.where.flatMap((p) => (p.kind === 'not_null' ? [field(p.path)] : [])),
    })),
    ingestion_predicate: ingestion.length > 0 ? ingestion.join(' AND ') : null,
    ingestion_column: rules.ingestionColumn,
    sample_fraction: 1 / rules.sampleDenominator,
    scale: rules.sampleDenominator,
    estimator: rules.estimator,
    price_micro_cents_per_1000_rows: rules.pricePer1000Rows,
    /** Filters the runner cannot interpret: it answers `{type: "failure"}` naming them. */
    unsupported_filters: rules.attributes.flatMap((a) => a.unsupported.map((u) => u.filter)),
  };
}

export interface SpecOptions {
  bucket: string;
  prefix: string;
  submission: number;
  nonce: string;
  /** nql-forecast's row cap. */
  maxResultRows: number;
}

/** The job spec: everything the runner needs, and where it must write. */
export function buildSpec(job: JobHandle, o: SpecOptions) {
  const base = `s3://${o.bucket}/${runPrefix(o.prefix, job.id, o.nonce, o.submission)}`;
  const input = job.input as Record<string, unknown>;
  const plan =
    job.type === 'forecast'
      ? forecastPlan(input as unknown as ForecastRulesInput, 'sampled')
      : job.type === 'forecast-internal'
        ? forecastPlan(input as unknown as ForecastRulesInput, 'exact')
        : job.type === 'costs'
          ? forecastPlan(input as unknown as ForecastRulesInput, 'costs')
          : job.type === 'nql-forecast'
            ? { max_rows: o.maxResultRows }
            : job.type === 'datasets_sample'
              ? { rows: Math.min(Number(input.sample_size ?? 1_000), 100_000) }
              : {};
  return {
    version: SPEC_VERSION,
    job: {
      id: job.id,
      type: job.type,
      company_id: job.companyId,
      attempt: job.attempt,
      submission: o.submission,
    },
    input,
    plan,
    output: { result: `${base}/result.json`, error: `${base}/error.json` },
  };
}
export type JobSpec = ReturnType<typeof buildSpec>;
