/** The job types the local data plane serves (DESIGN §2: every SQL-shaped type). */
export const LOCAL_JOB_TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
  'materialized_views_collect_access_rules_billing_data',
  'datasets_create_table',
  'datasets_delete_table',
  'datasets_truncate_table',
  'datasets_sample',
  'datasets_calculate_column_stats',
  'datasets_execute_dml',
] as const;
