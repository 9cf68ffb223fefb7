/**
 * Model names of the catalogue (`anthropic.claude-sonnet-4.5`, …) → what the backend calls them (a
 * Bedrock model id or inference-profile id, a model server's model name). Each executor ships a
 * default map; a data plane overrides it with a JSON object (a variable or a file). Override entries
 * replace defaults of the same name, add new names, and `null` removes a default name.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../lib/config.ts';
import { JobError } from '../index.ts';

/** How structured output is asked for: the API's JSON-schema output, or one forced tool. */
export type StructuredOutputMode = 'native' | 'tool';

export interface ModelEntry {
  /** The catalogue's name. */
  readonly name: string;
  /** What the backend calls it. */
  readonly id: string;
  readonly structuredOutput: StructuredOutputMode;
  /** Calls in flight to this model from this operator, at most. */
  readonly concurrency: number;
}

const Entry = z.union([
  z.string().min(1),
  z.strictObject({
    id: z.string().min(1),
    structured_output: z.enum(['native', 'tool']).optional(),
    concurrency: z.number().int().min(1).max(10_000).optional(),
  }),
  z.null(),
]);
/** The JSON form of a map: name → id, or name → {id, structured_output?, concurrency?}, or null. */
export const ModelMapJson = z.record(z.string().min(1), Entry);
export type ModelMapJson = z.infer<typeof ModelMapJson>;

export interface ModelMapSettings {
  /** The executor's shipped defaults. */
  defaults: ModelMapJson;
  /** The data plane's override: JSON text, from a variable. */
  overrideJson?: string | undefined;
  /** …or from a file. */
  overrideFile?: string | undefined;
  /** The variable names, for messages. */
  jsonVar: string;
  fileVar: string;
  /** structured_output when an entry does not say. */
  defaultMode: StructuredOutputMode;
  /** concurrency when an entry does not say. */
  defaultConcurrency: number;
  /** Substitutions in ids, e.g. `{geo}` → `eu` (Bedrock's inference-profile prefix). */
  substitutions?: Readonly<Record<string, string>>;
}

/** The resolved map; `resolve` answers a job's model name or fails it `INVALID_INPUT`. */
export class ModelMap {
  readonly entries: ReadonlyMap<string, ModelEntry>;
  constructor(entries: Iterable<ModelEntry>) {
    this.entries = new Map([...entries].map((e) => [e.name, e]));
  }

  get names(): string[] {
    return [...this.entries.keys()].sort();
  }

  resolve(name: string): ModelEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      const names = this.names;
      throw new JobError(
        'INVALID_INPUT',
        `model '${name}' is not configured on this data plane; configured: ${names.length ? names.join(', ') : '(none)'}`,
        { retryable: false, details: { field: 'model', configured: names } },
      );
    }
    return entry;
  }
}

/** Builds the map from the defaults and the override; a malformed override is a ConfigError. */
export function loadModelMap(s: ModelMapSettings): ModelMap {
  if (s.overrideJson && s.overrideFile) {
    throw new ConfigError([`${s.jsonVar}, ${s.fileVar}: set one of them, not both`]);
  }
  let override: ModelMapJson = {};
  const source = s.overrideJson ? s.jsonVar : s.fileVar;
  let text = s.overrideJson;
  if (!text && s.overrideFile) {
    try {
      text = readFileSync(s.overrideFile, 'utf8');
    } catch (err) {
      throw new ConfigError([
        `${s.fileVar}: cannot read ${s.overrideFile}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      ]);
    }
  }
  if (text) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([`${source}: not JSON: ${(err as Error).message}`]);
    }
    const r = ModelMapJson.safeParse(parsed);
    if (!r.success) {
      throw new ConfigError(
        r.error.issues.map(
          (i) =>
            `${source}: ${i.path.join('.') || '(map)'}: ${i.message} (expected name → "id" or {"id", "structured_output", "concurrency"})`,
        ),
      );
    }
    override = r.data;
  }
  const merged: ModelMapJson = { ...s.defaults, ...override };
  const entries: ModelEntry[] = [];
  for (const [name, value] of Object.entries(merged)) {
    if (value === null) continue;
    const raw = typeof value === 'string' ? { id: value } : value;
    let id = raw.id;
    for (const [k, v] of Object.entries(s.substitutions ?? {})) id = id.replaceAll(`{${k}}`, v);
    entries.push({
      name,
      id,
      structuredOutput: (typeof value === 'string' ? undefined : value.structured_output) ?? s.defaultMode,
      concurrency: (typeof value === 'string' ? undefined : value.concurrency) ?? s.defaultConcurrency,
    });
  }
  return new ModelMap(entries);
}
