/**
 * `dataplane-operator jobs …`: drive a control plane from a terminal or a script. In four parts:
 * - `jobs/connection.ts`: which control plane, with which token (options, environment, defaults);
 * - `jobs/exit-codes.ts`: the exit codes, and what went wrong turned into a message and a code;
 * - `jobs/commands.ts`: the seven subcommands (submit, list, show, wait, cancel, reschedule, logs);
 * - `format.ts` (shared with `dev`): durations, progress, failures, tables, the `show` view.
 */

export { describeJob } from './format.ts';
export { registerJobsCommand } from './jobs/commands.ts';
export { DEFAULT_URL, resolveToken, resolveUrl } from './jobs/connection.ts';
export { EXIT } from './jobs/exit-codes.ts';
