/**
 * `npm run gen:chart-schema`: writes the list of variable names the chart's `config` accepts into
 * helm/dataplane-operator/values.schema.json, from the one list the code reads (`knownVariables()` in
 * src/cli/config-schema.ts: the daemon's, the control plane's, the jobs CLI's, dev's and every built-in
 * executor's). Run it after adding a variable to any of those schemas; test/ship/helm.test.ts fails,
 * naming this command, while the two lists differ.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { knownVariables } from '../src/cli/config-schema.ts';

export const SCHEMA_PATH = join(
  import.meta.dirname,
  '..',
  'helm',
  'dataplane-operator',
  'values.schema.json',
);

export interface ChartSchema {
  properties: { config: { propertyNames: { pattern?: string; enum?: string[]; not?: unknown } } };
}

/** The schema with its `config.propertyNames.enum` set to `names`, sorted. */
export function withVariables<S extends ChartSchema>(schema: S, names: Iterable<string>): S {
  const propertyNames = schema.properties.config.propertyNames;
  delete propertyNames.pattern;
  propertyNames.enum = [...names].sort();
  return schema;
}

if (import.meta.main) {
  const schema = withVariables(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')), knownVariables());
  writeFileSync(SCHEMA_PATH, `${JSON.stringify(schema, null, 2)}\n`);
  // The repository's formatter decides the layout, so a regenerated file differs only in its list.
  execFileSync(
    join(import.meta.dirname, '..', 'node_modules', '.bin', 'biome'),
    ['format', '--write', SCHEMA_PATH],
    {
      stdio: 'ignore',
    },
  );
  process.stdout.write(`${SCHEMA_PATH}: ${schema.properties.config.propertyNames.enum?.length} variables\n`);
}
