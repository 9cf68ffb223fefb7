import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  catalogue,
  getJobType,
  JOB_TYPES,
  type JobType,
  validateInput,
  validateResult,
} from '../src/catalogue/index.ts';
import { FOLLOW_UP_TYPES } from '../src/control-plane/follow-ups.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'seed');
const fixtures = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => {
    const [type, kind] = f.split('.') as [string, 'input' | 'result'];
    return { file: f, type, kind, value: JSON.parse(readFileSync(join(DIR, f), 'utf8')) as unknown };
  });
const fixture = (type: JobType, kind: 'input' | 'result') =>
  structuredClone(
    fixtures.find((f) => f.type === type && f.kind === kind && !f.file.includes('seed003'))!.value,
  ) as Record<string, any>;

describe('seed fixtures', () => {
  it('has an input and a result fixture for each of the 16 job types', () => {
    expect(JOB_TYPES).toHaveLength(16);
    for (const type of JOB_TYPES) {
      expect(
        fixtures.some((f) => f.type === type && f.kind === 'input'),
        `${type} input`,
      ).toBe(true);
      expect(
        fixtures.some((f) => f.type === type && f.kind === 'result'),
        `${type} result`,
      ).toBe(true);
    }
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s parses with its type’s schema', (_name, f) => {
    const r = f.kind === 'input' ? validateInput(f.type, f.value) : validateResult(f.type, f.value);
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s tolerates an added field', (_name, f) => {
    const value = { ...(f.value as object), extra_field: { anything: true } };
    const r = f.kind === 'input' ? validateInput(f.type, value) : validateResult(f.type, value);
    expect(r.ok).toBe(true);
  });
});

type Case = [label: string, mutate: (x: Record<string, any>) => unknown, path: string];
const del = (k: string) => (x: Record<string, any>) => {
  delete x[k];
  return x;
};
const set = (path: string, v: unknown) => (x: Record<string, any>) => {
  const keys = path.split('.');
  let o: any = x;
  for (const k of keys.slice(0, -1)) o = o[k];
  o[keys.at(-1)!] = v;
  return x;
};

const forecastCases: Case[] = [
  ['missing details', del('details'), 'details'],
  ['sample rate zero', set('sample_rate_denominator', 0), 'sample_rate_denominator'],
  ['sample rate not an integer', set('sample_rate_denominator', 1.5), 'sample_rate_denominator'],
  [
    'unknown constraint type',
    set('details.company_constraint.type', 'maybe'),
    'details.company_constraint.type',
  ],
  ['negative price', set('details.pricing.micro_cents_usd', -1), 'details.pricing.micro_cents_usd'],
  [
    'bad recency',
    set('details.data_rules.ingestion_timestamp_filter.recency', '30 days'),
    'details.data_rules.ingestion_timestamp_filter.recency',
  ],
  ['as_of not a timestamp', set('as_of', 'yesterday'), 'as_of'],
  [
    'field without a name',
    (x) =>
      set('details.data_rules.attributes', [{ attribute_id: 1, fields: [{ filter: null, exported: true }] }])(
        x,
      ),
    'details.data_rules.attributes[0].fields[0].field',
  ],
];

const WRONG_INPUTS: Record<JobType, Case[]> = {
  forecast: forecastCases,
  'forecast-internal': forecastCases,
  costs: [
    ['missing details', del('details'), 'details'],
    ['missing as_of', del('as_of'), 'as_of'],
    [
      'company ids not numbers',
      set('details.company_constraint.company_ids', ['56']),
      'details.company_constraint.company_ids[0]',
    ],
    ['no attributes', set('details.data_rules.attributes', []), 'details.data_rules.attributes'],
    ['unknown details type', set('details.type', 'auction'), 'details.type'],
  ],
  'nql-forecast': [
    ['missing compiled_sql', del('compiled_sql'), 'compiled_sql'],
    ['empty compiled_sql', set('compiled_sql', '   '), 'compiled_sql'],
    ['nql a number', set('nql', 3), 'nql'],
    ['missing nql', del('nql'), 'nql'],
  ],
  'materialize-view': [
    ['missing dataset_id', del('dataset_id'), 'dataset_id'],
    ['negative dataset_id', set('dataset_id', -4), 'dataset_id'],
    [
      'unknown partition transform',
      set('partitions', [{ field: 'timestamp', fn: 'week', args: [] }]),
      'partitions[0].fn',
    ],
    [
      'chunk out of range',
      set('chunk_metadata.chunk_sequence', { number: 6, of: 5 }),
      'chunk_metadata.chunk_sequence.number',
    ],
    ['batch id not a uuid', set('chunk_metadata.batch_id', 'batch-1'), 'chunk_metadata.batch_id'],
    ['merge not a boolean', set('merge', 'no'), 'merge'],
  ],
  datasets_create_table: [
    ['missing compiled_sql', del('compiled_sql'), 'compiled_sql'],
    ['dataset_id a string', set('dataset_id', '1234'), 'dataset_id'],
    ['dataset_id fractional', set('dataset_id', 1.5), 'dataset_id'],
    ['empty sql', set('compiled_sql', ''), 'compiled_sql'],
  ],
  datasets_delete_table: [
    ['missing external_id', del('external_id'), 'external_id'],
    ['external_id with SQL in it', set('external_id', 'x; DROP TABLE y'), 'external_id'],
    ['managed flag a string', set('is_narrative_managed', 'yes'), 'is_narrative_managed'],
    ['missing managed flag', del('is_narrative_managed'), 'is_narrative_managed'],
  ],
  datasets_truncate_table: [
    ['missing dataset_id', del('dataset_id'), 'dataset_id'],
    ['dataset_id null', set('dataset_id', null), 'dataset_id'],
    ['dataset_id negative', set('dataset_id', -1), 'dataset_id'],
    ['dataset_id a string', set('dataset_id', 'abc'), 'dataset_id'],
  ],
  datasets_sample: [
    ['missing dataset_id', del('dataset_id'), 'dataset_id'],
    ['dataset_id a bool', set('dataset_id', true), 'dataset_id'],
    ['sample size zero', set('sample_size', 0), 'sample_size'],
    ['sample size too large', set('sample_size', 10_000_000), 'sample_size'],
  ],
  datasets_calculate_column_stats: [
    ['no columns', set('enabled_column_stats', {}), 'enabled_column_stats'],
    [
      'unknown data type',
      set('enabled_column_stats.amount.data_type', 'money'),
      'enabled_column_stats.amount.data_type',
    ],
    [
      'unknown statistic',
      set('enabled_column_stats.amount.enabled_column_stats.median', true),
      'enabled_column_stats.amount.enabled_column_stats',
    ],
    [
      'statistic flag not a boolean',
      set('enabled_column_stats.user_id.enabled_column_stats.mean', 1),
      'enabled_column_stats.user_id.enabled_column_stats.mean',
    ],
    ['missing dataset_id', del('dataset_id'), 'dataset_id'],
  ],
  datasets_execute_dml: [
    ['missing compiled_sql', del('compiled_sql'), 'compiled_sql'],
    ['bad timestamp', set('nio_last_modified_at', '2024-13-45'), 'nio_last_modified_at'],
    ['missing nql', del('nql'), 'nql'],
    ['dataset_id negative', set('dataset_id', -1), 'dataset_id'],
  ],
  model_inference_run: [
    ['no messages', set('messages', []), 'messages'],
    ['unknown role', set('messages', [{ role: 'robot', text: 'hi' }]), 'messages[0].role'],
    ['temperature out of range', set('inference_config.temperature', 5), 'inference_config.temperature'],
    ['max_tokens zero', set('inference_config.max_tokens', 0), 'inference_config.max_tokens'],
    [
      'schema not an object',
      set('inference_config.output_format_schema', 'json'),
      'inference_config.output_format_schema',
    ],
  ],
  model_training_run: [
    ['bad instance type', set('instance_type', 'g5.2xlarge'), 'instance_type'],
    ['unknown repository', set('base_model_repository', 'ftp'), 'base_model_repository'],
    ['bad version', set('trained_model_version', 'v-one'), 'trained_model_version'],
    [
      'missing trained model name',
      (x) => set('trained_model', { ...x.trained_model, name: undefined })(x),
      'trained_model.name',
    ],
    [
      'viewer ids not numbers',
      set('trained_model.collaborators.viewer_company_ids', ['a']),
      'trained_model.collaborators.viewer_company_ids[0]',
    ],
  ],
  models_train_classifier: [
    ['unknown model type', set('config.model_type', 'regression'), 'config.model_type'],
    ['no feature columns', set('config.feature_columns', []), 'config.feature_columns'],
    [
      'output name not an identifier',
      set('config.output_model_name', 'my model'),
      'config.output_model_name',
    ],
    ['missing config', del('config'), 'config'],
  ],
  models_deliver_model: [
    ['profile id not a uuid', set('profile_id', 'p-1'), 'profile_id'],
    [
      'unknown visibility',
      set('quick_settings.repository_visibility', 'secret'),
      'quick_settings.repository_visibility',
    ],
    ['app id negative', set('app_id', -1), 'app_id'],
    ['missing model_id', del('model_id'), 'model_id'],
  ],
  materialized_views_collect_access_rules_billing_data: [
    ['refresh job id not a uuid', set('refresh_job_id', '42'), 'refresh_job_id'],
    ['missing compiled_query', del('compiled_query'), 'compiled_query'],
    ['bad timestamp', set('nio_last_modified_at', 'Jan 15'), 'nio_last_modified_at'],
    ['dataset_id a string', set('dataset_id', '1234'), 'dataset_id'],
  ],
};

describe('wrong inputs are rejected with issues naming the field', () => {
  const cases = JOB_TYPES.flatMap((type) =>
    WRONG_INPUTS[type].map(([label, mutate, path]) => [type, label, mutate, path] as const),
  );
  it('covers every type with at least four wrong inputs', () => {
    for (const type of JOB_TYPES) expect(WRONG_INPUTS[type].length, type).toBeGreaterThanOrEqual(4);
  });
  it.each(cases)('%s: %s → %s', (type, _label, mutate, path) => {
    const r = validateInput(type, mutate(fixture(type, 'input')));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path)).toContain(path);
  });
  it('rejects inputs that are not objects at all', () => {
    for (const type of JOB_TYPES) {
      for (const bad of [null, 'text', 42, [1]])
        expect(validateInput(type, bad).ok, `${type} ${String(bad)}`).toBe(false);
    }
  });
});

describe('wrong results are rejected', () => {
  it.each(JOB_TYPES.map((t) => [t]))('%s refuses an empty object and the wrong type’s result', (type) => {
    expect(validateResult(type, {}).ok).toBe(false);
    const other = type === 'datasets_sample' ? 'datasets_truncate_table' : 'datasets_sample';
    expect(validateResult(type, fixture(other, 'result')).ok).toBe(false);
  });

  it('names the field of a malformed result', () => {
    const dml = validateResult('datasets_execute_dml', { type: 'datasets_execute_dml', affected_rows: -1 });
    expect(!dml.ok && dml.issues[0]!.path).toBe('affected_rows');
    const nql = validateResult('nql-forecast', { type: 'Failure' });
    expect(!nql.ok && nql.issues[0]!.path).toBe('msg');
    const mv = validateResult('materialize-view', {
      ...fixture('materialize-view', 'result'),
      recalculation_id: 'x',
    });
    expect(!mv.ok && mv.issues[0]!.path).toBe('recalculation_id');
  });

  it('accepts the failure variants and the statistics our executors add', () => {
    expect(validateResult('nql-forecast', { type: 'Failure', msg: 'timed out' }).ok).toBe(true);
    expect(validateResult('forecast', { type: 'failure', msg: 'no data' }).ok).toBe(true);
    const stats = {
      type: 'datasets_calculate_column_stats',
      columns: { amount: { value_count: 3, mean: 1.5, histogram: [{ lower: 0, upper: 1, count: 3 }] } },
    };
    expect(validateResult('datasets_calculate_column_stats', stats).ok).toBe(true);
  });
});

describe('the registry of types', () => {
  it('marks exactly the two internal types', () => {
    expect(JOB_TYPES.filter((t) => catalogue[t].internal)).toEqual([
      'forecast-internal',
      'materialized_views_collect_access_rules_billing_data',
    ]);
    // The internal types are exactly those the control plane's follow-up rules create.
    expect(JOB_TYPES.filter((t) => catalogue[t].internal)).toEqual([...FOLLOW_UP_TYPES]);
  });

  it('reports an unknown type as such', () => {
    expect(getJobType('nope')).toBeUndefined();
    const r = validateInput('nope', {});
    expect(!r.ok && r.issues[0]).toMatchObject({ path: 'type', code: 'unknown_job_type' });
  });
});
