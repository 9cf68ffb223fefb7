/**
 * Every environment variable the product reads, by section: the daemon, the bundled control plane,
 * the jobs CLI, `dev`, and each built-in executor (from its ExecutorModule). `config check`,
 * `config print`, the env files' documentation test and the README's reference all read this list.
 */
import { z } from 'zod';
import { BUILTIN_EXECUTORS } from '../daemon/builtin-executors.ts';
import { DaemonEnv } from '../daemon/config.ts';
import { didYouMean } from './did-you-mean.ts';
import { ControlPlaneEnv, DevEnv } from './env.ts';

export interface ConfigSection {
  name: string;
  env: z.ZodObject;
  /** Variables whose values are secrets: redacted by `config print`, flagged when given inline. */
  secretVars: readonly string[];
  /** For executors: the name in DPO_EXECUTORS. */
  executor?: string;
}

/** The jobs CLI reads these directly (src/cli/jobs.ts). */
export const JobsCliEnv = z.object({
  DPO_CONTROL_PLANE_URL: z.url({ protocol: /^https?$/ }).optional(),
  DPO_API_TOKEN: z.string().min(1).optional(),
  DPO_API_TOKEN_FILE: z.string().min(1).optional(),
  DPO_DATA_DIR: z.string().min(1).optional(),
});

export const CONFIG_SECTIONS: readonly ConfigSection[] = [
  { name: 'daemon (run)', env: DaemonEnv, secretVars: ['DPO_TOKEN'] },
  { name: 'control plane (control-plane, dev)', env: ControlPlaneEnv, secretVars: [] },
  { name: 'dev', env: DevEnv, secretVars: [] },
  { name: 'jobs CLI', env: JobsCliEnv, secretVars: ['DPO_API_TOKEN'] },
  ...Object.values(BUILTIN_EXECUTORS).map((m) => ({
    name: `executor ${m.name}`,
    env: m.env,
    secretVars: m.secretVars ?? [],
    executor: m.name,
  })),
];

/** Every variable name any section reads. */
export function knownVariables(): Set<string> {
  return new Set(CONFIG_SECTIONS.flatMap((s) => Object.keys(s.env.shape)));
}

export function secretVariables(): Set<string> {
  return new Set(CONFIG_SECTIONS.flatMap((s) => s.secretVars));
}

/** One issue per name the product does not read, with the nearest known name when it is close. */
export function unknownVariableIssues(names: Iterable<string>, known = knownVariables()): string[] {
  const issues: string[] = [];
  for (const name of names) {
    if (known.has(name)) continue;
    issues.push(`${name}: not a variable of dataplane-operator${didYouMean(name, known)}`);
  }
  return issues;
}

/** Every variable `run` reads: the daemon's and every built-in executor's. */
export function daemonVariables(): Set<string> {
  return new Set(
    CONFIG_SECTIONS.filter((s) => s === CONFIG_SECTIONS[0] || s.executor !== undefined).flatMap((s) =>
      Object.keys(s.env.shape),
    ),
  );
}

/** Variables only the control plane, `dev` or the jobs CLI read, with who reads them. */
export function notDaemonVariables(): Map<string, string[]> {
  const daemon = daemonVariables();
  const out = new Map<string, string[]>();
  for (const s of CONFIG_SECTIONS) {
    for (const name of Object.keys(s.env.shape)) {
      if (daemon.has(name)) continue;
      out.set(name, [...(out.get(name) ?? []), s.name]);
    }
  }
  return out;
}

/** What a value of a variable looks like before it is parsed: a number, true/false, or any text. */
export function variableKind(schema: z.ZodType): 'number' | 'boolean' | 'string' {
  const def = (schema as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
  if (['default', 'optional', 'prefault', 'nullable', 'readonly'].includes(def.type) && def.innerType)
    return variableKind(def.innerType);
  if (def.type === 'pipe' && def.in) return variableKind(def.in);
  if (def.type === 'number') return 'number';
  if (def.type === 'enum') {
    const values = Object.values(
      (schema as unknown as { def: { entries: Record<string, string> } }).def.entries,
    );
    if (values.length === 2 && values.includes('true') && values.includes('false')) return 'boolean';
  }
  return 'string';
}

/** Whether a variable's value is a duration in milliseconds (its name ends in `_MS`). */
export const isMillis = (name: string): boolean => /_MS$/.test(name);
