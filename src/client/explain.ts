/**
 * What a failed call to the control plane means for a person, without HTTP: the message lines to
 * show (with the schema issues a 422 listed) and a kind a command turns into its own hint.
 */
import { ApiError, ProtocolError, TransportError } from './transport.ts';

export type FailureKind =
  /** The token is missing or unknown. */
  | 'unauthorized'
  /** The token is valid but not for this (an operator token on the user side, another data plane). */
  | 'forbidden'
  /** Any other refusal from the control plane. */
  | 'refused'
  /** Nothing listens at the URL. */
  | 'unreachable'
  /** The connection broke, or timed out. */
  | 'network'
  /** Something answered that does not speak the contract. */
  | 'protocol';

interface IssueLike {
  path?: unknown;
  message?: unknown;
}

/** The explanation of a control-plane failure, or undefined when `e` is not one. */
export function explainFailure(
  e: unknown,
):
  | { kind: FailureKind; lines: string[] /** One line: status, code and message. */; short: string }
  | undefined {
  if (e instanceof ApiError) {
    const lines = [`${e.message} (${e.status} ${e.code})`];
    const issues = (e.details as { issues?: unknown } | null | undefined)?.issues;
    if (Array.isArray(issues)) {
      for (const i of issues as IssueLike[]) {
        const path = typeof i?.path === 'string' && i.path ? i.path : '(body)';
        lines.push(`  ${path}: ${typeof i?.message === 'string' ? i.message : JSON.stringify(i)}`);
      }
    }
    const kind = e.status === 401 ? 'unauthorized' : e.status === 403 ? 'forbidden' : 'refused';
    return { kind, lines, short: `${e.status} ${e.code}: ${e.message}` };
  }
  if (e instanceof TransportError) {
    return {
      kind: e.errno === 'ECONNREFUSED' ? 'unreachable' : 'network',
      lines: [e.message],
      short: e.message,
    };
  }
  if (e instanceof ProtocolError) return { kind: 'protocol', lines: [e.message], short: e.message };
  return undefined;
}
