/**
 * The contract between the operator and the Spark job runner (runner/README.md): the job spec the
 * operator writes to S3 before StartJobRun, and the files the runner writes back. Every decision
 * that can be made here is made here (and tested), so the runner stays a thin interpreter: the
 * forecast's company, attribute and ingestion rules are compiled into Spark SQL predicates, the
 * sampling fraction and pricing are computed, the row cap is fixed.
 */
import { z } from 'zod';
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

interface ForecastLikeInput {
  as_of: string | null;
  details: {
    company_constraint?: { type: 'inclusion' | 'exclusion'; company_ids: number[] } | null;
    data_rules: {
      attributes: Array<{
        attribute_id: number;
        optional?: boolean;
        fields: Array<{ field: string; filter: string | null }>;
      }>;
      ingestion_timestamp_filter?: {
        recency?: string | null;
        from?: { type: 'inclusive' | 'exclusive'; value: string } | null;
        until?: { type: 'inclusive' | 'exclusive'; value: string } | null;
      } | null;
    };
    pricing: { micro_cents_usd: number };
  };
  sample_rate_denominator?: number;
}

/** An ISO 8601 duration as a Spark SQL interval literal. */
export function sparkInterval(iso: string): string {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
      iso,
    );
  if (!m) throw new Error(`cannot read the duration '${iso}'`);
  const [, y, mo, w, d, h, mi, s] = m;
  const parts = [
    y && `${y} YEARS`,
    mo && `${mo} MONTHS`,
    (w || d) && `${Number(w ?? 0) * 7 + Number(d ?? 0)} DAYS`,
    h && `${h} HOURS`,
    mi && `${mi} MINUTES`,
    s && `${s} SECONDS`,
  ].filter(Boolean);
  return `INTERVAL ${parts.join(' ') || '0 SECONDS'}`;
}

/**
 * The forecast's rules as Spark SQL, with the same meaning as the local data plane (README): which
 * catalogue rows are candidates, which columns a dataset must have, which rows count.
 */
export function forecastPlan(input: ForecastLikeInput, mode: 'sampled' | 'exact' | 'costs') {
  const c = input.details.company_constraint;
  const ids = (c?.company_ids ?? []).map((n) => String(Math.trunc(n))).join(', ') || 'NULL';
  const companyPredicate = !c
    ? 'true'
    : c.type === 'inclusion'
      ? `company_id IN (${ids})`
      : `company_id NOT IN (${ids})`;
  const attributes = input.details.data_rules.attributes.map((a) => ({
    attribute_id: a.attribute_id,
    optional: a.optional === true,
    // Field paths read struct fields: `unique_id.value` → `unique_id`.`value`.
    not_null: a.fields
      .filter((f) => f.filter === 'include_only_if_not_null_filter')
      .map((f) => f.field.split('.').map(id).join('.')),
    unsupported_filters: a.fields
      .filter((f) => f.filter !== null && f.filter !== 'include_only_if_not_null_filter')
      .map((f) => f.filter),
  }));
  const unsupported = attributes.flatMap((a) => a.unsupported_filters);
  const ts = input.details.data_rules.ingestion_timestamp_filter;
  const reference = input.as_of ? `TIMESTAMP ${lit(input.as_of)}` : 'current_timestamp()';
  const ingestion: string[] = [];
  if (ts?.recency) ingestion.push(`_nio_ingested_at >= ${reference} - ${sparkInterval(ts.recency)}`);
  if (ts?.from)
    ingestion.push(
      `_nio_ingested_at ${ts.from.type === 'inclusive' ? '>=' : '>'} TIMESTAMP ${lit(ts.from.value)}`,
    );
  if (ts?.until)
    ingestion.push(
      `_nio_ingested_at ${ts.until.type === 'inclusive' ? '<=' : '<'} TIMESTAMP ${lit(ts.until.value)}`,
    );
  if (input.as_of && ts) ingestion.push(`_nio_ingested_at <= ${reference}`);
  const denominator = mode === 'sampled' ? (input.sample_rate_denominator ?? 1) : 1;
  return {
    mode,
    company_predicate: companyPredicate,
    attributes: attributes.map(({ unsupported_filters: _, ...a }) => a),
    ingestion_predicate: ingestion.length > 0 ? ingestion.join(' AND ') : null,
    ingestion_column: '_nio_ingested_at',
    sample_fraction: 1 / denominator,
    scale: denominator,
    estimator: denominator > 1 ? { type: 'sample', rate: 1 / denominator } : { type: 'exact' },
    price_micro_cents_per_1000_rows: input.details.pricing.micro_cents_usd,
    /** Filters the runner cannot interpret: it answers `{type: "failure"}` naming them. */
    unsupported_filters: unsupported,
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
      ? forecastPlan(input as unknown as ForecastLikeInput, 'sampled')
      : job.type === 'forecast-internal'
        ? forecastPlan(input as unknown as ForecastLikeInput, 'exact')
        : job.type === 'costs'
          ? forecastPlan(input as unknown as ForecastLikeInput, 'costs')
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
