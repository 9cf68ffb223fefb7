/**
 * The job's `output_format_schema`, compiled once per job with ajv (JSON Schema 2020-12, which also
 * reads draft-07 `definitions`; formats from ajv-formats). A schema ajv refuses is the job's input
 * being wrong: `INVALID_INPUT`, before any model is called.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { JobError } from '../index.ts';

// ajv-formats is CommonJS: its default export is the plugin function under ESM.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** One validation error, as it is shown to the model in a repair and in a failure's details. */
export interface OutputIssue {
  path: string;
  message: string;
}

export interface OutputValidator {
  /** The issues of `value` against the schema; empty when it is valid. */
  check(value: unknown): OutputIssue[];
}

/**
 * One ajv for the process: building one (its meta-schemas and formats compiled) costs ~30 ms of CPU,
 * which per job would block the event loop and cap throughput near 20 jobs/s per core.
 */
let shared: Ajv2020 | undefined;
function ajv(): Ajv2020 {
  if (shared === undefined) {
    shared = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
    addFormats(shared);
  }
  return shared;
}

/** Compiled validators by the schema's JSON text: jobs of one kind share a schema. */
const compiled = new Map<string, ValidateFunction>();
const CACHE_SIZE = 256;

/**
 * Compiles `schema`, or finds it compiled. The schema leaves ajv's own registry right after
 * compilation (the validator keeps working): schemas are customer input, so one job's `$id` must not
 * collide with another's, and nothing accumulates beyond the bounded cache here.
 */
export function compileOutputSchema(schema: unknown): OutputValidator {
  const key = JSON.stringify(schema) ?? 'undefined';
  let validate = compiled.get(key);
  if (validate === undefined) {
    const a = ajv();
    try {
      validate = a.compile(schema as object);
    } catch (err) {
      throw new JobError(
        'INVALID_INPUT',
        `inference_config.output_format_schema is not a valid JSON Schema: ${(err as Error).message}`,
        { retryable: false, details: { field: 'inference_config.output_format_schema' } },
      );
    } finally {
      try {
        a.removeSchema(schema as object);
      } catch {}
    }
    if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, validate);
  } else {
    // Least recently used goes first: a hit moves to the end.
    compiled.delete(key);
    compiled.set(key, validate);
  }
  const v = validate;
  return {
    check(value) {
      const issues: OutputIssue[] = [];
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        issues.push({ path: '', message: 'the structured output must be a JSON object' });
      }
      if (!v(value)) issues.push(...(v.errors ?? []).map(toIssue));
      return issues.slice(0, 50);
    },
  };
}

function toIssue(e: ErrorObject): OutputIssue {
  return { path: e.instancePath || '/', message: e.message ?? e.keyword };
}
