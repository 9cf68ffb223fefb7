/**
 * The composition root's list of built-in executors (the only place `src/` imports `executors/`).
 * Each executor declares the job types it serves in its own `executors/<name>/index.ts`; every list
 * of executor names and every "which executors serve this type" (config check, routing conflicts,
 * docs, the chart schema) derives from the map below. Adding an executor is one folder plus its
 * entry here (docs/executors.md). A module path in DPO_EXECUTORS loads any other executor that
 * implements the interface in `src/executor/`.
 */
import { bedrockModule } from '../../executors/bedrock/index.ts';
import { emrServerlessModule } from '../../executors/emr-serverless/index.ts';
import { localModule } from '../../executors/local/index.ts';
import { openAiCompatibleModule } from '../../executors/openai-compatible/index.ts';
import { sagemakerModule } from '../../executors/sagemaker/index.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import type { JobType } from '../catalogue/index.ts';
import type { BuiltinExecutors } from './registry.ts';

const MODULES = {
  local: localModule,
  'emr-serverless': emrServerlessModule,
  bedrock: bedrockModule,
  'openai-compatible': openAiCompatibleModule,
  sagemaker: sagemakerModule,
  snowflake: snowflakeModule,
} as const;

/** Name → module, looked up by the names in DPO_EXECUTORS. */
export const BUILTIN_EXECUTORS: BuiltinExecutors = MODULES;

export type BuiltinExecutorName = keyof typeof MODULES;

/** The built-in executors' names, in the order above. */
export const BUILTIN_EXECUTOR_NAMES = Object.keys(MODULES) as BuiltinExecutorName[];

/** The built-in executors that serve `type`, per their own declarations (the routing table). */
export function builtinExecutorsServing(type: JobType): BuiltinExecutorName[] {
  return BUILTIN_EXECUTOR_NAMES.filter((n) => (MODULES[n].jobTypes as readonly JobType[]).includes(type));
}

// What the CLI needs of an executor beyond its module, routed through here so that only this file
// imports `executors/`: `emr upload-runner` reads the EMR configuration, `dev` seeds the local data
// plane through the local executor.
export { loadEmrConfig } from '../../executors/emr-serverless/config.ts';
export type { LazyLocalExecutor as LocalExecutor } from '../../executors/local/lazy.ts';
