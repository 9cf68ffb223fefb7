/**
 * What `run`, `dev` and `control-plane` check before their action runs (a hook in main.ts): every env
 * file given can be read (a missing one is a configuration error, exit 2), and every `DPO_*` variable,
 * from the environment or a file, is one the product reads, with the same did-you-mean as
 * `config check`. A typo such as `DPO_CONCURENCY` would otherwise be ignored and the default used.
 *
 * Only `DPO_*` names are checked: the environment (and a file) may carry the shell's, Node's and the
 * AWS SDK's own variables. `config check` is stricter about its files: every name there is checked.
 */
import { ConfigError, type Env, mergeEnv, readEnvFile } from '../lib/config.ts';
import { unknownVariableIssues } from './config-schema.ts';

/**
 * The one rule for names, which `run`, `config check` and `config print` share: every `DPO_*` name,
 * from the environment or a file, must be one the product reads. (`config check` is stricter about
 * its files' other names too: see checkConfig.)
 */
export function unknownNameIssues(env: Env): string[] {
  return unknownVariableIssues(Object.keys(env).filter((n) => n.startsWith('DPO_') && env[n] !== undefined));
}

/** Throws a ConfigError naming every unreadable env file, or else every unknown `DPO_*` variable. */
export function refuseUnknownVariables(files: readonly string[], env: Env = process.env): void {
  const unreadable: string[] = [];
  const merged: Record<string, string | undefined> = {};
  for (const file of files) {
    try {
      Object.assign(merged, readEnvFile(file));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      unreadable.push(...err.issues);
    }
  }
  if (unreadable.length > 0) throw new ConfigError(unreadable);
  const issues = unknownNameIssues({ ...merged, ...mergeEnv([], env) });
  if (issues.length > 0) throw new ConfigError(issues);
}
