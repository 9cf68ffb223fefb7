/**
 * The Helm chart's schema and templates read as files (test/ship/helm-render.test.ts and
 * helm-secrets.test.ts render them with Helm): values.yaml and every example validate
 * against values.schema.json (merged the way Helm merges them), broken values are refused, the
 * templates use only values the schema describes and use all of them, and each example's `config`
 * is a configuration `config check` accepts once the chart has added its own variables.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CHART_VARIABLES,
  VARIABLES_TPL_PATH,
  variablesTemplate,
  withVariables,
} from '../../scripts/gen-chart-schema.ts';
import { checkConfig } from '../../src/cli/config.ts';
import { daemonVariables, secretVariables } from '../../src/cli/config-schema.ts';

const CHART = join(import.meta.dirname, '..', '..', 'helm', 'dataplane-operator');
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const defaults = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
const examples = readdirSync(join(CHART, 'examples')).filter((f) => f.endsWith('.yaml'));
const example = (f: string) => parse(readFileSync(join(CHART, 'examples', f), 'utf8'));
const templates = readdirSync(join(CHART, 'templates'), { recursive: true, withFileTypes: true })
  .filter((f) => f.isFile())
  .map((f) => readFileSync(join(f.parentPath, f.name), 'utf8'));

const validate = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true }).compile(schema);
const errors = (values: unknown) =>
  validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

/** Helm's merge of user values onto the chart's: maps merge deeply, everything else is replaced. */
function merge(base: any, over: any): any {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over;
  if (typeof over !== 'object' || over === null || Array.isArray(over)) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
  return out;
}

describe('values.schema.json', () => {
  it("types exactly the variables `run` reads (daemonVariables), minus secrets and the chart's own", () => {
    const listed = Object.keys(schema.properties.config.properties).sort();
    const secrets = secretVariables();
    const known = [...daemonVariables()]
      .filter((v) => !secrets.has(v) && !CHART_VARIABLES.includes(v))
      .sort();
    const missing = known.filter((v) => !listed.includes(v));
    const stale = listed.filter((v: string) => !known.includes(v));
    // A new variable in a zod schema (an executor's, the daemon's) lands here: one command fixes it.
    expect(
      missing.length + stale.length,
      `values.schema.json is out of date: run \`npm run gen:chart-schema\` and commit helm/dataplane-operator/values.schema.json ` +
        `(missing: ${missing.join(', ') || 'none'}; no longer read: ${stale.join(', ') || 'none'})`,
    ).toBe(0);
    expect(schema.properties.config.properties.DPO_CONCURRENCY.type).toEqual(['string', 'integer']);
  });

  it('templates/_variables.tpl holds the lists the code has (secrets, names, who reads what)', () => {
    expect(
      readFileSync(VARIABLES_TPL_PATH, 'utf8') === variablesTemplate(),
      'templates/_variables.tpl is out of date: run `npm run gen:chart-schema` and commit it',
    ).toBe(true);
  });

  it('the generator rewrites only config', () => {
    const copy = withVariables(structuredClone(schema));
    expect(copy).toEqual(schema);
    const { config: _, ...rest } = copy.properties as Record<string, unknown>;
    const { config: __, ...before } = schema.properties as Record<string, unknown>;
    expect(rest).toEqual(before);
  });

  it('refuses values.yaml alone: a profile must name the control plane, the data plane and the executors', () => {
    expect(errors(defaults)).toEqual([
      "/config must have required property 'DPO_CONTROL_PLANE_URL'",
      "/config must have required property 'DPO_DATA_PLANE_ID'",
      "/config must have required property 'DPO_EXECUTORS'",
    ]);
  });

  it('has one example per profile', () => {
    expect(examples.sort()).toEqual(['values-aws.yaml', 'values-local.yaml', 'values-snowflake.yaml']);
  });

  it.each(examples)('accepts %s merged onto values.yaml', (f) => {
    expect(errors(merge(defaults, example(f)))).toEqual([]);
  });

  it.each([
    [
      'a writable root filesystem',
      { securityContext: { readOnlyRootFilesystem: false } },
      /must be equal to constant/,
    ],
    [
      'privilege escalation',
      { securityContext: { allowPrivilegeEscalation: true } },
      /must be equal to constant/,
    ],
    ['a replica count that is not a number', { replicaCount: 'two' }, /must be integer/],
    [
      'a number-like variable given text of another type',
      { config: { DPO_CONCURRENCY: [1] } },
      /must be string,integer/,
    ],
    ['a name that cannot be a variable', { config: { 'not a name': 'x' } }, /must match pattern/],
    ['an unknown value (a typo)', { replicas: 3 }, /must NOT have additional properties/],
    ['no token secret', { operatorToken: { existingSecret: '' } }, /must NOT have fewer than 1 characters/],
    [
      'a data volume type it does not know',
      { dataVolume: { type: 'hostPath' } },
      /must be equal to one of the allowed values/,
    ],
  ])('refuses %s', (_what, over, message) => {
    const found = errors(merge(defaults, over));
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toMatch(message);
  });
});

describe('templates', () => {
  const used = new Set<string>();
  for (const t of templates)
    for (const m of t.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g))
      used.add((m[1] as string).slice(1));

  /** The schema node a dotted path leads to; free-form objects accept any deeper path. */
  function resolve(path: string): unknown {
    let node: any = schema;
    for (const part of path.split('.')) {
      if (node.properties?.[part]) node = node.properties[part];
      else if (node.type === 'object' && node.additionalProperties !== false) return node;
      else return undefined;
    }
    return node;
  }

  it('use only values the schema describes', () => {
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((p) => resolve(p) === undefined)).toEqual([]);
  });

  it('use every top-level value the schema describes', () => {
    const top = new Set([...used].map((p) => p.split('.')[0]));
    expect(Object.keys(schema.properties).filter((k) => !top.has(k))).toEqual([]);
  });

  it('give the pod a grace period longer than the drain, and probes on the health endpoints', () => {
    const deployment = templates.find((t) => t.includes('kind: Deployment')) as string;
    expect(deployment).toContain(
      'terminationGracePeriodSeconds: {{ add .Values.drainTimeoutSeconds .Values.terminationGraceExtraSeconds }}',
    );
    expect(schema.properties.terminationGraceExtraSeconds.minimum).toBeGreaterThan(0);
    expect(deployment).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz/);
    expect(deployment).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz/);
    expect(templates.join('\n')).toMatch(/DPO_DRAIN_TIMEOUT_MS: \{\{ mul \.Values\.drainTimeoutSeconds 1000/);
  });
});

describe('each example is a valid operator configuration', () => {
  it.each(examples)('%s', async (f) => {
    const values = merge(defaults, example(f));
    // What the ConfigMap holds: the example's config plus the variables the chart sets.
    const env: Record<string, string> = {
      ...values.config,
      DPO_TOKEN_FILE: `/var/run/secrets/dataplane-operator/${values.operatorToken.key}`,
      DPO_DATA_DIR: '/var/lib/dataplane-operator',
      DPO_METRICS_LISTEN: `0.0.0.0:${values.metricsPort}`,
      DPO_DRAIN_TIMEOUT_MS: String(values.drainTimeoutSeconds * 1000),
    };
    const report = await checkConfig(env, new Set(Object.keys(env)));
    expect(report.errors).toEqual([]);
  });
});
