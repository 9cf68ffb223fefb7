/**
 * The job catalogue: input and result schemas of every job type the platform knows. Which executor
 * serves which type is not here: each executor declares its types (`executors/<name>/index.ts`) and
 * the composition root (src/daemon/builtin-executors.ts) derives the routing from them. Schemas are
 * strict about what executors rely on and tolerate added fields (loose objects), so a newer control
 * plane can add fields freely.
 */
import type { z } from 'zod';
import * as D from './datasets.ts';
import * as F from './forecasting.ts';
import * as M from './materialization.ts';
import * as Mo from './models.ts';
import * as S from './system.ts';

export * from './datasets.ts';
export * from './forecasting.ts';
export * from './materialization.ts';
export * from './models.ts';
export * from './system.ts';

export const JOB_TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
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
  'materialized_views_collect_access_rules_billing_data',
] as const;
export type JobType = (typeof JOB_TYPES)[number];

export interface JobTypeSpec<I = unknown, R = unknown> {
  readonly type: JobType;
  readonly input: z.ZodType<I>;
  readonly result: z.ZodType<R>;
  /** Created by the control plane itself (forecast-internal, the billing job); refused from users. */
  readonly internal: boolean;
  /** One line for people (CLI help, docs). */
  readonly summary: string;
}

/** A type's spec, keeping its schemas' own types (so {@link InputOf} can read them). */
const spec = <T extends JobType, I extends z.ZodType, R extends z.ZodType>(
  type: T,
  input: I,
  result: R,
  summary: string,
  internal = false,
) => Object.freeze({ type, input, result, summary, internal });

export const catalogue = Object.freeze({
  forecast: spec(
    'forecast',
    F.ForecastInput,
    F.ForecastResult,
    'Estimate rows and cost of a subscription, sampled',
  ),
  'forecast-internal': spec(
    'forecast-internal',
    F.ForecastInput,
    F.ForecastResult,
    'Unsampled follow-up of a forecast',
    true,
  ),
  costs: spec('costs', F.CostsInput, F.CostsResult, 'Scan cost of a subscription query, without sampling'),
  'nql-forecast': spec('nql-forecast', M.NqlForecastInput, M.NqlForecastResult, 'Preview an NQL query'),
  'materialize-view': spec(
    'materialize-view',
    M.MaterializeViewInput,
    M.MaterializeViewResult,
    'Refresh a materialized view dataset as a new snapshot',
  ),
  datasets_create_table: spec(
    'datasets_create_table',
    D.DatasetsCreateTableInput,
    D.DatasetsCreateTableResult,
    'Create the table of a dataset',
  ),
  datasets_delete_table: spec(
    'datasets_delete_table',
    D.DatasetsDeleteTableInput,
    D.DatasetsDeleteTableResult,
    'Drop the table of a dataset',
  ),
  datasets_truncate_table: spec(
    'datasets_truncate_table',
    D.DatasetsTruncateTableInput,
    D.DatasetsTruncateTableResult,
    'Remove every row of a dataset, keeping its schema',
  ),
  datasets_sample: spec(
    'datasets_sample',
    D.DatasetsSampleInput,
    D.DatasetsSampleResult,
    'Store a small sample of a dataset for preview',
  ),
  datasets_calculate_column_stats: spec(
    'datasets_calculate_column_stats',
    D.DatasetsCalculateColumnStatsInput,
    D.DatasetsCalculateColumnStatsResult,
    'Compute column statistics into the metrics store',
  ),
  datasets_execute_dml: spec(
    'datasets_execute_dml',
    D.DatasetsExecuteDmlInput,
    D.DatasetsExecuteDmlResult,
    'Run an INSERT, UPDATE, DELETE or MERGE on a dataset',
  ),
  model_inference_run: spec(
    'model_inference_run',
    Mo.ModelInferenceRunInput,
    Mo.ModelInferenceRunResult,
    'LLM inference with structured output',
  ),
  model_training_run: spec(
    'model_training_run',
    Mo.ModelTrainingRunInput,
    Mo.ModelTrainingRunResult,
    'Fine-tune a model',
  ),
  models_train_classifier: spec(
    'models_train_classifier',
    Mo.ModelsTrainClassifierInput,
    Mo.ModelsTrainClassifierResult,
    'Train a classifier in the warehouse',
  ),
  models_deliver_model: spec(
    'models_deliver_model',
    Mo.ModelsDeliverModelInput,
    Mo.ModelsDeliverModelResult,
    'Deliver a trained model to an external destination',
  ),
  materialized_views_collect_access_rules_billing_data: spec(
    'materialized_views_collect_access_rules_billing_data',
    S.BillingInput,
    S.BillingResult,
    'Collect access-rule billing data after a materialized view refresh',
    true,
  ),
}) satisfies { readonly [T in JobType]: JobTypeSpec & { readonly type: T } };

/** A job type's input as its handler receives it: the output of the catalogue's input schema. */
export type InputOf<T extends JobType> = z.output<(typeof catalogue)[T]['input']>;

const TYPES: ReadonlySet<string> = new Set(JOB_TYPES);

export function isJobType(type: string): type is JobType {
  return TYPES.has(type);
}

export function getJobType(type: string): JobTypeSpec | undefined {
  return isJobType(type) ? catalogue[type] : undefined;
}

export interface Issue {
  /** Dotted path with indices, e.g. `details.pricing.micro_cents_usd` or `messages[1].role`; "" for the root. */
  path: string;
  message: string;
  code: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

export function formatIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message, code: i.code }));
}

export type Validation<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

function validate(type: string, value: unknown, which: 'input' | 'result'): Validation<unknown> {
  const s = getJobType(type);
  if (s === undefined) {
    return {
      ok: false,
      issues: [{ path: 'type', message: `unknown job type '${type}'`, code: 'unknown_job_type' }],
    };
  }
  const r = s[which].safeParse(value);
  return r.success ? { ok: true, value: r.data } : { ok: false, issues: formatIssues(r.error) };
}

export function validateInput(type: string, input: unknown): Validation<unknown> {
  return validate(type, input, 'input');
}

export function validateResult(type: string, result: unknown): Validation<unknown> {
  return validate(type, result, 'result');
}
