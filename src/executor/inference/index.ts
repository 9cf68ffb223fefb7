/**
 * What the inference executors share (`executors/bedrock`, `executors/openai-compatible`): the model
 * map, the output schema's validation, the repair, usage, the per-model concurrency limit and the
 * job-log lines. Each executor supplies only its transport.
 */
export { ModelLimiter } from './limiter.ts';
export {
  loadModelMap,
  type ModelEntry,
  ModelMap,
  ModelMapJson,
  type ModelMapSettings,
  type StructuredOutputMode,
} from './models.ts';
export {
  type ChatTurn,
  type InferenceCall,
  type InferenceDeps,
  type InferenceReply,
  type InferenceResult,
  type InferenceTransport,
  OUTPUT_EXCERPT_CHARS,
  runInference,
  type StopKind,
} from './run.ts';
export { compileOutputSchema, type OutputIssue, type OutputValidator } from './schema.ts';
