/**
 * Configuration from the environment and env files, parsed once with zod and frozen. Every issue
 * is reported with the variable's name; the CLI prints them all and exits 2.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { registerSecret } from './secrets.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * A path from the command line, resolved from the directory the user typed the command in.
 * `npm run cli -- …` runs the CLI from the package's directory; npm records the user's directory in
 * INIT_CWD, so `npm run cli -- jobs submit ./my-job.json` means the user's file.
 */
export function userPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (isAbsolute(path)) return path;
  const base = env.npm_lifecycle_event !== undefined && env.INIT_CWD ? env.INIT_CWD : process.cwd();
  return resolve(base, path);
}

/** Reads an env file (KEY=value lines, # comments, quotes) with Node's own parser. */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(userPath(path), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw new ConfigError([`--env-file ${path}: ${why} (${userPath(path)})`]);
  }
  return parseEnv(text) as Record<string, string>;
}

/** Process environment over env files: what the shell says wins over what a file says. */
export function mergeEnv(files: readonly string[], env: Env = process.env): Env {
  const merged: Record<string, string | undefined> = {};
  for (const file of files) Object.assign(merged, readEnvFile(file));
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  return merged;
}

/**
 * Parses `env` with a schema whose keys are variable names. Empty strings count as unset, so an
 * env file can list a variable without a value to document it.
 */
export function parseEnvConfig<S extends z.ZodObject>(schema: S, env: Env): Readonly<z.infer<S>> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => {
        const name = i.path.length ? i.path.join('.') : '(config)';
        const given = i.path.length === 1 ? input[String(i.path[0])] : undefined;
        const missing = i.code === 'invalid_type' && i.path.length === 1 && given === undefined;
        if (missing) return `${name}: required`;
        // z.coerce.number() says "expected number, received NaN" of `2s`: say what a number here is.
        if (i.code === 'invalid_type' && i.expected === 'number' && given !== undefined) {
          return /_MS$/.test(name)
            ? `${name}: expected milliseconds, e.g. 2000, got '${given}'`
            : `${name}: expected a whole number, got '${given}'`;
        }
        return `${name}: ${i.message}`;
      }),
    );
  }
  return Object.freeze(r.data);
}

/** Reads a secret from a file (a mounted Kubernetes secret, say), trimming the trailing newline. */
export function readSecretFile(path: string, what: string): string {
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (value === '') throw new ConfigError([`${what}: file ${path} is empty`]);
    registerSecret(value);
    return value;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // The image runs as uid 10001: a token file mounted with the host's 0600 and owner is unreadable.
    const hint =
      code === 'EACCES' && typeof process.getuid === 'function'
        ? ` (this process runs as uid ${process.getuid()}: make the file readable by it, e.g. chown ${process.getuid()} or mode 0444)`
        : '';
    throw new ConfigError([`${what}: cannot read ${path}: ${code ?? err}${hint}`]);
  }
}

/** Durations and sizes from env: non-negative integers. */
export const envInt = (min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** `host:port`, `:port` or `port`. */
export const HostPort = z.string().transform((s, ctx) => {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65_535) {
    ctx.addIssue({ code: 'custom', message: `expected host:port, got '${s}'` });
    return z.NEVER;
  }
  const host = (m[1] || '127.0.0.1').replace(/^\[|\]$/g, '');
  return { host, port };
});

/** `key=value` pairs, comma-separated, e.g. `forecast=3600000,datasets_sample=600000`. */
export const envPairs = <V extends z.ZodType>(value: V) =>
  z.string().transform((s, ctx) => {
    const out: Record<string, z.infer<V>> = {};
    for (const part of s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const eq = part.indexOf('=');
      const key = part.slice(0, eq).trim();
      const parsed = value.safeParse(part.slice(eq + 1).trim());
      if (eq <= 0 || !parsed.success) {
        ctx.addIssue({ code: 'custom', message: `expected key=value pairs, got '${part}'` });
        return z.NEVER;
      }
      out[key] = parsed.data;
    }
    return out;
  });
