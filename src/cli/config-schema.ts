/**
 * Every environment variable the product reads, by section: the daemon, the bundled control plane,
 * the jobs CLI, `dev`, and each built-in executor (from its ExecutorModule). `config check`,
 * `config print`, the env files' documentation test and the README's reference all read this list.
 */
import { z } from 'zod';
import { BUILTIN_EXECUTORS } from '../daemon/builtin-executors.ts';
import { DaemonEnv } from '../daemon/config.ts';
import { ControlPlaneEnv } from './control-plane.ts';
import { DevEnv } from './dev.ts';

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

/** Levenshtein distance, for did-you-mean on misspelt variable names. */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] as number;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j] as number;
      d[j] = Math.min((d[j] as number) + 1, (d[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length] as number;
}

/** One issue per name the product does not read, with the nearest known name when it is close. */
export function unknownVariableIssues(names: Iterable<string>, known = knownVariables()): string[] {
  const issues: string[] = [];
  for (const name of names) {
    if (known.has(name)) continue;
    const near = [...known].map((k) => [k, distance(name, k)] as const).sort((a, b) => a[1] - b[1])[0];
    const hint = near && near[1] <= 3 ? ` (did you mean ${near[0]}?)` : '';
    issues.push(`${name}: not a variable of dataplane-operator${hint}`);
  }
  return issues;
}
