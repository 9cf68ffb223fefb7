/**
 * The composition root's list of built-in executors (the only place `src/` imports `executors/`).
 * Each backend joins here when it lands; until then a module path in DPO_EXECUTORS loads any
 * executor that implements the interface in `src/executor/`.
 */
import { bedrockModule } from '../../executors/bedrock/index.ts';
import { emrServerlessModule } from '../../executors/emr-serverless/index.ts';
import { localModule } from '../../executors/local/index.ts';
import { openAiCompatibleModule } from '../../executors/openai-compatible/index.ts';
import { sagemakerModule } from '../../executors/sagemaker/index.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import type { BuiltinExecutors } from './registry.ts';

export const BUILTIN_EXECUTORS: BuiltinExecutors = {
  local: localModule,
  'emr-serverless': emrServerlessModule,
  bedrock: bedrockModule,
  'openai-compatible': openAiCompatibleModule,
  sagemaker: sagemakerModule,
  snowflake: snowflakeModule,
};
