/**
 * The exit codes of `jobs` and the mapping from what went wrong to a message and a code. Scripts
 * branch on the code, so each outcome has its own: 0 ok (for `wait`: completed), 1 API or network
 * error, 2 usage error, 3 failed, 4 cancelled, 5 `wait --timeout` passed, 6 completed with a result
 * that reports a failure (nql-forecast `{type: "Failure"}`), 130 interrupted.
 * Messages go to stderr and never carry the token.
 */
import { explainFailure, type FailureKind } from '../../client/explain.ts';
import type { JobState } from '../../contract/index.ts';
import { cliCommand } from '../paths.ts';

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  failed: 3,
  cancelled: 4,
  timeout: 5,
  /** `wait`: the job completed, and its result reports a failure (nql-forecast `{type: "Failure"}`). */
  resultFailure: 6,
  interrupted: 130,
} as const;

/** The command line or its inputs are wrong: exit 2 with the message. */
export class UsageError extends Error {}

/** Ctrl-C: exit 130 without a message. */
export class Interrupted extends Error {}

/** `jobs wait`'s exit code for the state the job was left in (not ended: the timeout passed). */
export function exitFor(state: JobState): number {
  switch (state) {
    case 'completed':
      return EXIT.ok;
    case 'failed':
      return EXIT.failed;
    case 'cancelled':
      return EXIT.cancelled;
    default:
      return EXIT.timeout;
  }
}

const err = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

const HINTS: Partial<Record<FailureKind, string>> = {
  unauthorized:
    'hint: pass an admin token of this control plane with --token or --token-file (DPO_API_TOKEN, DPO_API_TOKEN_FILE)',
  forbidden: "hint: `jobs` needs an admin token, not an operator's (is DPO_API_TOKEN the daemon's token?)",
  unreachable: `hint: is the control plane running? Start one with \`${cliCommand()} control-plane\`, or pass --url`,
  protocol: 'hint: is --url the control plane (contract v1)?',
};

/** Prints what went wrong (with a hint when the cause is a usual one) and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof Interrupted) return EXIT.interrupted;
  if (e instanceof UsageError) {
    err(`error: ${e.message}`);
    return EXIT.usage;
  }
  const failure = explainFailure(e);
  if (failure !== undefined) {
    const [first, ...rest] = failure.lines;
    err(`error: ${first}`);
    for (const line of rest) err(line);
    const hint = HINTS[failure.kind];
    if (hint) err(hint);
    return EXIT.error;
  }
  err(`error: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.error;
}
