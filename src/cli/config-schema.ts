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
