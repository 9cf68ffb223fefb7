/**
 * The process's secret values, and their redaction wherever text leaves the process: the daemon's log
 * lines (the logger's stream hook), job failures and job-log lines (the daemon, before they are sent).
 * Code never logs a secret on purpose; this is the net for a backend that echoes one back (an error
 * message quoting the key it refused) or a driver that puts one in an exception.
 *
 * Registered: every secret variable's value (the executors' `secretVars`, `DPO_TOKEN`) at startup,
 * and every secret file's contents as it is read (`readSecretFile`, executors' own key and token
 * files through {@link registerSecret}). Values shorter than {@link MIN_SECRET_LENGTH} are not
 * registered: replacing them would garble ordinary text and they are no credential worth the name.
 */

export const MIN_SECRET_LENGTH = 8;
export const REDACTED = '[redacted]';

const secrets = new Set<string>();
/** Longest first, so a secret that contains another is replaced whole. */
let ordered: string[] = [];

/** Adds a secret value (and the forms it takes inside JSON and URLs) to what is redacted. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  const v = value.trim();
  if (v.length < MIN_SECRET_LENGTH || secrets.has(v)) return;
  const forms = new Set([v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]);
  for (const f of forms) secrets.add(f);
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/** `text` with every registered secret replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  if (ordered.length === 0 || text.length < MIN_SECRET_LENGTH) return text;
  let out = text;
  for (const s of ordered) {
    if (out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}

/** A JSON-safe value with every registered secret replaced inside its strings (keys included). */
export function redactSecretsDeep<T>(value: T): T {
  if (ordered.length === 0 || value === undefined) return value;
  const json = JSON.stringify(value);
  if (json === undefined) return value;
  const redacted = redactSecrets(json);
  return redacted === json ? value : (JSON.parse(redacted) as T);
}

/** Test hook: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  ordered = [];
}
