/**
 * The composition root's list of built-in executors (the only place `src/` imports `executors/`).
 * Each backend joins here when it lands; until then a module path in DPO_EXECUTORS loads any
 * executor that implements the interface in `src/executor/`.
 */
import { emrServerlessModule } from '../../executors/emr-serverless/index.ts';
import { localModule } from '../../executors/local/index.ts';
import type { BuiltinExecutors } from './registry.ts';

export const BUILTIN_EXECUTORS: BuiltinExecutors = {
  local: localModule,
  'emr-serverless': emrServerlessModule,
};
