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
 * Compiles `schema`. A fresh ajv instance per job: schemas are customer input, so one job's `$id`
 * must not collide with another's, and nothing accumulates in a shared cache.
 */
export function compileOutputSchema(schema: unknown): OutputValidator {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema as object);
  } catch (err) {
    throw new JobError(
      'INVALID_INPUT',
      `inference_config.output_format_schema is not a valid JSON Schema: ${(err as Error).message}`,
      { retryable: false, details: { field: 'inference_config.output_format_schema' } },
    );
  }
  return {
    check(value) {
      const issues: OutputIssue[] = [];
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        issues.push({ path: '', message: 'the structured output must be a JSON object' });
      }
      if (!validate(value)) issues.push(...(validate.errors ?? []).map(toIssue));
      return issues.slice(0, 50);
    },
  };
}

function toIssue(e: ErrorObject): OutputIssue {
  return { path: e.instancePath || '/', message: e.message ?? e.keyword };
}
