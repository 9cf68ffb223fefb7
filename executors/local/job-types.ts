import type { JobType } from '../../src/catalogue/index.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const LOCAL_JOB_TYPES = [
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
  'materialized_views_collect_access_rules_billing_data',
] as const satisfies readonly JobType[];
