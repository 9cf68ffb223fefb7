/**
 * `dataplane-operator config check --env-file F…`: validates env files and prints every issue (exit 0
 * when valid, 2 when not). `dataplane-operator config print [--env-file F…] [--json]`: the effective
 * configuration (env files, then the environment, then defaults) with secrets redacted.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { z } from 'zod';
import { BUILTIN_EXECUTORS } from '../daemon/builtin-executors.ts';
import { DaemonEnv, loadDaemonConfig } from '../daemon/config.ts';
import { buildRegistry } from '../daemon/registry.ts';
import { ConfigError, type Env, mergeEnv, parseEnvConfig, readEnvFile } from '../lib/config.ts';
import {
  CONFIG_SECTIONS,
  type ConfigSection,
  knownVariables,
  secretVariables,
  unknownVariableIssues,
} from './config-schema.ts';
import { unknownNameIssues } from './strict-env.ts';

export interface CheckReport {
  errors: string[];
  warnings: string[];
  /** Values left in from the shipped examples (account 123456789012, example.com…): exit 2 too. */
  placeholders: string[];
  executors: string[];
}

/** An AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-4`. */
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** The variables holding one (Snowflake's regions are named otherwise: not checked here). */
const REGION_VARIABLE = /^(AWS_(DEFAULT_)?REGION|DPO_(?!SNOWFLAKE_)[A-Z0-9_]*REGION)$/;

/**
 * Values the examples (config/*.env, the chart's examples, the README) use where the user must put
 * their own: the documentation account id, example hosts and buckets, `<angle brackets>`, "changeme".
 */
const PLACEHOLDERS: readonly RegExp[] = [
  /\b123456789012\b/,
  /(^|[^a-z])example([^a-z]|$)|example(app|-)/i,
  /<[^>]+>/,
  /\b(change-?me|replace-?me|todo|xxxx+)\b/i,
  // Snowflake's documented account identifier shape, as config/snowflake.env and the chart show it.
  /\bmy-?(org|account|company|bucket|warehouse)\b|\bmyorg-myaccount\b/i,
];

/**
 * What to say about a secret given inline: its `_FILE` variant when the product reads one, else the
 * SDK's own mechanisms (the AWS SDK reads no `AWS_SECRET_ACCESS_KEY_FILE`).
 */
function secretHint(name: string, known: ReadonlySet<string>): string {
  if (known.has(`${name}_FILE`)) return `prefer ${name}_FILE (a mounted secret file)`;
  if (name.startsWith('AWS_')) {
    return "prefer the AWS SDK's credential chain: IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), an instance role, or AWS_PROFILE with a shared credentials file";
  }
  return 'prefer a secret store mounted as a file';
}

function issuesOf(section: ConfigSection, env: Env): string[] {
  try {
    parseEnvConfig(section.env, env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
}

/**
 * Validates a configuration: the one function that decides, for `config check`, `config print` and (by
 * the same parts) `run`. Unknown variables with a did-you-mean: every name the files set, and every
 * `DPO_*` name of `env` (run's rule, src/cli/strict-env.ts); the daemon's variables as `run` loads them
 * (loadDaemonConfig); the control plane's when any is set; and each enabled built-in executor's (by
 * building it, which runs its own checks without touching the network). Files a secret points to
 * need not exist here (they are mounted at run time): that is a warning.
 */
export async function checkConfig(env: Env, fileVars: ReadonlySet<string>): Promise<CheckReport> {
  const known = knownVariables();
  const errors: string[] = [...unknownVariableIssues(fileVars, known), ...unknownNameIssues(env)];
  const warnings: string[] = [];
  const placeholders: string[] = [];
  const tokenFile = env.DPO_TOKEN_FILE;
  const tokenFileHere = !tokenFile || existsSync(tokenFile);
  try {
    loadDaemonConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // A token file that is not here is mounted at run time: the warning below says so.
    errors.push(...err.issues.filter((i) => tokenFileHere || !i.startsWith('DPO_TOKEN_FILE: cannot read')));
  }
  for (const name of [
    'DPO_TOKEN_FILE',
    'DPO_API_TOKEN_FILE',
    'DPO_CP_ADMIN_TOKEN_FILE',
    'DPO_CP_TOKENS_FILE',
  ]) {
    const path = env[name];
    if (path && !existsSync(path))
      warnings.push(`${name}: ${path} does not exist here (fine if it is mounted at run time)`);
  }
  for (const name of secretVariables()) {
    if (fileVars.has(name) && env[name])
      warnings.push(`${name}: a secret given as a value; ${secretHint(name, known)}`);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!value || !known.has(name)) continue;
    if (REGION_VARIABLE.test(name) && !AWS_REGION.test(value)) {
      errors.push(`${name}: '${value}' is not an AWS region (expected e.g. us-east-1, eu-west-3)`);
    }
    const placeholder = PLACEHOLDERS.find((p) => p.test(value));
    if (placeholder && fileVars.has(name))
      placeholders.push(`${name}: '${value}' is a placeholder from the examples`);
  }
  if (Object.keys(env).some((k) => k.startsWith('DPO_CP_'))) {
    errors.push(...issuesOf(CONFIG_SECTIONS[1] as ConfigSection, env));
  }
  const executors = (env.DPO_EXECUTORS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of executors) {
    const module = BUILTIN_EXECUTORS[name];
    if (!module) {
      if (/[/\\]|\.[cm]?[jt]s$/.test(name))
        warnings.push(`DPO_EXECUTORS: ${name} is a module path; its variables are not checked`);
      else
        errors.push(
          `DPO_EXECUTORS: unknown executor '${name}' (built in: ${Object.keys(BUILTIN_EXECUTORS).join(', ')})`,
        );
      continue;
    }
    try {
      const executor = await module.createExecutor(env);
      await executor.close?.();
      warnings.push(...(module.checkWarnings?.(env) ?? []).map((w) => `[${name}] ${w}`));
    } catch (err) {
      if (err instanceof ConfigError) errors.push(...err.issues.map((i) => `[${name}] ${i}`));
      else errors.push(`[${name}] ${(err as Error).message}`);
    }
  }
  // The routing table, as startup builds it: a type two enabled executors serve needs DPO_ROUTES.
  const modules = executors.map((n) => BUILTIN_EXECUTORS[n]).filter((m) => m !== undefined);
  if (modules.length === executors.length) {
    try {
      const routes = parseEnvConfig(DaemonEnv.pick({ DPO_ROUTES: true }), env).DPO_ROUTES;
      buildRegistry(
        modules.map((m) => ({ name: m.name, jobTypes: m.jobTypes, execute: async () => undefined })),
        routes,
      );
    } catch (err) {
      if (err instanceof ConfigError) errors.push(...err.issues);
      else throw err;
    }
  }
  return { errors: [...new Set(errors)], warnings, placeholders, executors };
}

const REDACTED = '[redacted]';

/** A parsed value back in the form an env file writes it. */
function render(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(render).join(',');
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('host' in o && 'port' in o) return `${o.host}:${o.port}`;
    return Object.entries(o)
      .map(([k, v]) => `${k}=${render(v)}`)
      .join(',');
  }
  return String(value);
}

/** Every known variable: its effective value (set, or the default), where it came from, redacted. */
export function effectiveConfig(
  env: Env,
  fileVars: ReadonlySet<string>,
  all = false,
): Array<{ name: string; value: string; source: 'file' | 'environment' | 'default'; sections: string[] }> {
  const secrets = secretVariables();
  const rows = new Map<
    string,
    { name: string; value: string; source: 'file' | 'environment' | 'default'; sections: string[] }
  >();
  const enabled = new Set((env.DPO_EXECUTORS ?? '').split(',').map((x) => x.trim()));
  const relevant = (s: ConfigSection) =>
    all ||
    s === CONFIG_SECTIONS[0] ||
    (s.executor !== undefined && enabled.has(s.executor)) ||
    Object.keys(s.env.shape).some((k) => fileVars.has(k));
  for (const section of CONFIG_SECTIONS.filter(relevant)) {
    for (const [name, schema] of Object.entries(section.env.shape)) {
      const existing = rows.get(name);
      if (existing) {
        existing.sections.push(section.name);
        continue;
      }
      const raw = env[name];
      let value: string;
      let source: 'file' | 'environment' | 'default';
      if (raw !== undefined && raw !== '') {
        value = raw;
        source = fileVars.has(name) && process.env[name] !== raw ? 'file' : 'environment';
      } else {
        const parsed = (schema as z.ZodType).safeParse(undefined);
        value = parsed.success ? render(parsed.data) : '';
        source = 'default';
      }
      if (secrets.has(name) && value !== '') value = REDACTED;
      rows.set(name, { name, value, source, sections: [section.name] });
    }
  }
  return [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function readFiles(files: readonly string[]): { fileEnv: Record<string, string>; fileVars: Set<string> } {
  const fileEnv: Record<string, string> = {};
  for (const f of files) Object.assign(fileEnv, readEnvFile(f));
  return { fileEnv, fileVars: new Set(Object.keys(fileEnv)) };
}

export function registerConfigCommand(program: Command): void {
  const config = program
    .command('config')
    .description('Check or show the configuration (env files and environment).');
  config
    .command('check')
    .description(
      "Validate env files, or the environment (--with-env: a pod's, say); print every issue. Exit 0 when valid, 2 when not.",
    )
    .option('--env-file <file...>', 'env files to check (later files win)')
    .option('--with-env', 'also apply the current environment, as `run` would (alone: check the environment)')
    .action(async (opts: { envFile?: string[]; withEnv?: boolean }) => {
      const files = opts.envFile ?? [];
      if (files.length === 0 && !opts.withEnv) {
        process.stderr.write('config check: give --env-file <file...>, --with-env, or both\n');
        process.exit(2);
      }
      let fileEnv: Record<string, string>;
      let fileVars: Set<string>;
      try {
        ({ fileEnv, fileVars } = readFiles(files));
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(2);
      }
      const env = opts.withEnv ? mergeEnv(files) : fileEnv;
      // What the user gave: the files' names, and with --with-env the environment's own variables
      // (a pod's come from its ConfigMap: a placeholder there is as wrong as in a file).
      const given = new Set(fileVars);
      if (opts.withEnv)
        for (const name of Object.keys(process.env)) if (knownVariables().has(name)) given.add(name);
      const report = await checkConfig(env, given);
      const label = [...files, ...(opts.withEnv ? ['environment'] : [])].join(' + ');
      for (const w of report.warnings) process.stdout.write(`warning: ${w}\n`);
      if (report.errors.length > 0) {
        process.stdout.write(`${label}: ${report.errors.length} issue(s)\n`);
        for (const e of report.errors) process.stdout.write(`  - ${e}\n`);
      }
      if (report.placeholders.length > 0) {
        process.stdout.write(
          `${label}: ${report.placeholders.length} placeholder(s) left from the examples: put your own values\n`,
        );
        for (const p of report.placeholders) process.stdout.write(`  - ${p}\n`);
      }
      if (report.errors.length > 0 || report.placeholders.length > 0) process.exit(2);
      process.stdout.write(
        `${label}: valid (${given.size} variables; executors: ${report.executors.join(', ') || 'none'})\n`,
      );
    });
  config
    .command('print')
    .description(
      'Show the effective configuration (env files, then the environment, then defaults); secrets redacted.',
    )
    .option('--env-file <file...>', 'env files to read (the environment wins)')
    .option('--json', 'machine-readable output')
    .option('--all', 'every section, not only the daemon, its enabled executors and what the files set')
    .action(async (opts: { envFile?: string[]; json?: boolean; all?: boolean }) => {
      let env: Env;
      let fileVars: Set<string>;
      try {
        ({ fileVars } = readFiles(opts.envFile ?? []));
        env = mergeEnv(opts.envFile ?? []);
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(2);
      }
      const rows: Array<ReturnType<typeof effectiveConfig>[number] & { error?: string }> = effectiveConfig(
        env,
        fileVars,
        opts.all === true,
      );
      // The same verdict as `config check` and `run`: an unknown name is a row marked as an error,
      // never dropped, and so is a value they refuse.
      const { errors } = await checkConfig(env, fileVars);
      const secrets = secretVariables();
      for (const issue of errors) {
        const name = /^([A-Za-z_][A-Za-z0-9_]*): /.exec(issue)?.[1];
        const row = name ? rows.find((r) => r.name === name) : undefined;
        if (row) row.error = row.error ? `${row.error}; ${issue}` : issue;
        else if (name && env[name] !== undefined && !knownVariables().has(name)) {
          const raw = env[name] ?? '';
          rows.push({
            name,
            value: secrets.has(name) || /TOKEN|SECRET|PASSWORD/.test(name) ? REDACTED : raw,
            source: fileVars.has(name) ? 'file' : 'environment',
            sections: [],
            error: issue,
          });
        }
      }
      rows.sort((a, b) => a.name.localeCompare(b.name));
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(Object.fromEntries(rows.map((r) => [r.name, r])), null, 2)}\n`,
        );
      } else {
        const width = Math.max(...rows.map((r) => r.name.length));
        for (const r of rows) {
          const where = r.error ? `error: ${r.error}` : `${r.source}; ${r.sections.join(', ')}`;
          process.stdout.write(
            `${r.name.padEnd(width)} = ${r.value === '' ? '(unset)' : r.value}   # ${where}\n`,
          );
        }
      }
      const unplaced = errors.filter((e) => !rows.some((r) => r.error?.includes(e)));
      for (const e of unplaced) process.stderr.write(`error: ${e}\n`);
      if (errors.length > 0) {
        process.stderr.write(`${errors.length} issue(s): \`run\` would refuse this configuration\n`);
        process.exit(2);
      }
    });
}
