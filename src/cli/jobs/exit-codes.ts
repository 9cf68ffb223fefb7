/**
 * The exit codes of `jobs` and the mapping from what went wrong to a message and a code. Scripts
 * branch on the code, so each outcome has its own: 0 ok (for `wait`: completed), 1 API or network
 * error, 2 usage error, 3 failed, 4 cancelled, 5 `wait --timeout` passed, 130 interrupted.
 * Messages go to stderr and never carry the token.
 */
import { ApiError, ProtocolError, TransportError } from '../../client/user-client.ts';
import type { JobState } from '../../contract/index.ts';

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  failed: 3,
  cancelled: 4,
  timeout: 5,
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

interface IssueLike {
  path?: unknown;
  message?: unknown;
}

/** Prints what went wrong (with a hint when the cause is a usual one) and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof Interrupted) return EXIT.interrupted;
  if (e instanceof UsageError) {
    err(`error: ${e.message}`);
    return EXIT.usage;
  }
  if (e instanceof ApiError) {
    err(`error: ${e.message} (${e.status} ${e.code})`);
    const issues = (e.details as { issues?: unknown } | null | undefined)?.issues;
    if (Array.isArray(issues)) {
      for (const i of issues as IssueLike[]) {
        const path = typeof i?.path === 'string' && i.path ? i.path : '(body)';
        err(`  ${path}: ${typeof i?.message === 'string' ? i.message : JSON.stringify(i)}`);
      }
    }
    if (e.status === 401) {
      err(
        'hint: pass an admin token of this control plane with --token or --token-file (DPO_API_TOKEN, DPO_API_TOKEN_FILE)',
      );
    } else if (e.status === 403) {
      err("hint: `jobs` needs an admin token, not an operator's (is DPO_API_TOKEN the daemon's token?)");
    }
    return EXIT.error;
  }
  if (e instanceof TransportError) {
    err(`error: ${e.message}`);
    if (e.errno === 'ECONNREFUSED') {
      err(
        'hint: is the control plane running? Start one with `dataplane-operator control-plane`, or pass --url',
      );
    }
    return EXIT.error;
  }
  if (e instanceof ProtocolError) {
    err(`error: ${e.message}`);
    err('hint: is --url the control plane (contract v1)?');
    return EXIT.error;
  }
  err(`error: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.error;
}
