/** The job types the Spark executor serves (DESIGN §2). */
export const EMR_JOB_TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
  'materialized_views_collect_access_rules_billing_data',
  'datasets_sample',
] as const;
