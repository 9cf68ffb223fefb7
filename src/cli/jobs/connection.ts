/**
 * Where `jobs` connects and with what token. The defaults are those of the bundled control plane on
 * this machine (its address, and the admin token it writes to its data directory), so that after
 * `dev` or `control-plane` the CLI needs no options. The token is the admin token of the control
 * plane, never DPO_TOKEN (the daemon's operator token). Problems here are usage errors (exit 2).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, readSecretFile, userPath } from '../../lib/config.ts';
import { UsageError } from './exit-codes.ts';

/** The bundled control plane's address when nothing else is said. */
export const DEFAULT_URL = 'http://127.0.0.1:8700';
/** The bundled control plane's data directory when DPO_DATA_DIR is not set. */
export const DEFAULT_DATA_DIR = '.data';

/** The connection options every `jobs` subcommand takes. */
export interface ConnectionOpts {
  url?: string;
  token?: string;
  tokenFile?: string;
}

/** The control plane's base URL: --url, else DPO_CONTROL_PLANE_URL, else {@link DEFAULT_URL}. */
export function resolveUrl(o: ConnectionOpts, env: NodeJS.ProcessEnv = process.env): string {
  const raw = o.url || env.DPO_CONTROL_PLANE_URL || DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url: '${raw}' is not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url: '${raw}' must be an http:// or https:// URL`);
  }
  return raw.replace(/\/+$/, '');
}

/** The project's one secret-file reader, its complaint turned into a usage error. */
function readTokenFile(file: string, what: string): string {
  try {
    return readSecretFile(file, what);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.issues.join('; '));
    throw e;
  }
}

/**
 * The token, first found of: --token, --token-file, DPO_API_TOKEN, DPO_API_TOKEN_FILE, then
 * `<DPO_DATA_DIR or .data>/admin.token`, where the bundled control plane writes the admin token it
 * generates. Not DPO_TOKEN: that is the daemon's operator token.
 */
export function resolveToken(o: ConnectionOpts, env: NodeJS.ProcessEnv = process.env): string {
  const token = findToken(o, env);
  // A header cannot carry these; say so rather than let the request fail obscurely.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
  if (/[\u0000-\u001f\u007f]/.test(token)) {
    throw new UsageError('the token contains a line break or another control character');
  }
  return token;
}

function findToken(o: ConnectionOpts, env: NodeJS.ProcessEnv): string {
  if (o.token && o.tokenFile) throw new UsageError('pass --token or --token-file, not both');
  if (o.token) return o.token.trim();
  if (o.tokenFile) return readTokenFile(userPath(o.tokenFile), '--token-file');
  for (const name of ['DPO_API_TOKEN', 'DPO_API_TOKEN_FILE'] as const) {
    const value = env[name]?.trim();
    if (!value) continue;
    return name.endsWith('_FILE') ? readTokenFile(value, name) : value;
  }
  const dataFile = join(env.DPO_DATA_DIR || DEFAULT_DATA_DIR, 'admin.token');
  if (existsSync(dataFile)) return readTokenFile(dataFile, 'admin token');
  throw new UsageError(
    'no token: pass --token <token> or --token-file <file>, or set DPO_API_TOKEN or DPO_API_TOKEN_FILE ' +
      `(an admin token of the control plane). The bundled control plane writes one to ${dataFile} ` +
      `(the data directory is DPO_DATA_DIR, default ${DEFAULT_DATA_DIR}).`,
  );
}
