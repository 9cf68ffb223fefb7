/**
 * The executor registry, built once at startup: type → executor (a duplicate type is a startup error, an unknown one fails the job). A type served by two
 * enabled executors must be routed by config (DPO_ROUTES), else startup fails naming the type.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Executor, ExecutorFactory, ExecutorModule } from '../executor/index.ts';
import { ConfigError, type Env } from '../lib/config.ts';
import { registerSecret } from '../lib/secrets.ts';

export type BuiltinExecutors = Readonly<Record<string, ExecutorModule>>;

/**
 * Loads each enabled executor: a built-in name, or a path to a module whose `createExecutor`
 * (or default export) is an {@link ExecutorFactory}.
 */
export async function loadExecutors(
  names: readonly string[],
  builtins: BuiltinExecutors,
  env: Env,
): Promise<Executor[]> {
  const out: Executor[] = [];
  for (const name of names) {
    // The executor's secret variables join what every log line and failure is redacted of.
    for (const v of builtins[name]?.secretVars ?? []) registerSecret(env[v]);
    let factory: ExecutorFactory | undefined = builtins[name]?.createExecutor;
    if (factory === undefined) {
      if (!/[/\\]|\.[cm]?[jt]s$/.test(name)) {
        const known = Object.keys(builtins);
        throw new ConfigError([
          `DPO_EXECUTORS: unknown executor '${name}' (built in: ${known.length ? known.join(', ') : 'none yet'}; or give a module path)`,
        ]);
      }
      const url = pathToFileURL(isAbsolute(name) ? name : resolve(name)).href;
      let mod: { createExecutor?: ExecutorFactory; default?: ExecutorFactory };
      try {
        mod = (await import(url)) as typeof mod;
      } catch (err) {
        throw new ConfigError([`DPO_EXECUTORS: cannot load ${name}: ${(err as Error).message}`]);
      }
      factory = mod.createExecutor ?? mod.default;
      if (typeof factory !== 'function') {
        throw new ConfigError([
          `DPO_EXECUTORS: ${name} exports neither createExecutor nor a default factory`,
        ]);
      }
    }
    out.push(await factory(env));
  }
  return out;
}

export interface Registry {
  /** Type → the executor that runs it. */
  readonly routes: ReadonlyMap<string, Executor>;
  readonly executors: readonly Executor[];
  readonly jobTypes: readonly string[];
}

export function buildRegistry(
  executors: readonly Executor[],
  routes: Readonly<Record<string, string>>,
): Registry {
  const issues: string[] = [];
  const byName = new Map<string, Executor>();
  for (const e of executors) {
    if (byName.has(e.name)) issues.push(`DPO_EXECUTORS: executor '${e.name}' is enabled twice`);
    byName.set(e.name, e);
  }
  const servers = new Map<string, Executor[]>();
  for (const e of executors) {
    for (const t of e.jobTypes) servers.set(t, [...(servers.get(t) ?? []), e]);
  }
  const table = new Map<string, Executor>();
  for (const [type, candidates] of servers) {
    const routed = routes[type];
    if (routed !== undefined) {
      const chosen = candidates.find((c) => c.name === routed);
      if (chosen === undefined) {
        issues.push(
          `DPO_ROUTES: '${type}=${routed}' names an executor that is not enabled or does not serve ${type} (served by ${candidates.map((c) => c.name).join(', ')})`,
        );
      } else table.set(type, chosen);
    } else if (candidates.length > 1) {
      issues.push(
        `DPO_ROUTES: job type '${type}' is served by ${candidates.map((c) => c.name).join(' and ')}; name one, e.g. DPO_ROUTES=${type}=${candidates[0]!.name}`,
      );
    } else table.set(type, candidates[0]!);
  }
  for (const type of Object.keys(routes)) {
    if (!servers.has(type)) issues.push(`DPO_ROUTES: no enabled executor serves '${type}'`);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { routes: table, executors, jobTypes: [...table.keys()].sort() };
}
