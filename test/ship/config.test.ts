/**
 * The env files of config/ against the configuration schema (src/cli/config-schema.ts), and the
 * `config check` / `config print` commands as a user runs them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownVariables } from '../../src/cli/config-schema.ts';
import { BUILTIN_EXECUTORS } from '../../src/daemon/builtin-executors.ts';
import { runCliInProcess } from '../support/cli.ts';
import { runCli } from '../support/processes.ts';

const CONFIG = join(import.meta.dirname, '..', '..', 'config');
const files = readdirSync(CONFIG).filter((f) => f.endsWith('.env'));
const text = (f: string) => readFileSync(join(CONFIG, f), 'utf8');

/** Variables a file sets (`NAME=`) or shows commented out (`# NAME=`). */
function variablesOf(content: string): { active: Map<string, string>; all: Set<string> } {
  const active = new Map<string, string>();
  const all = new Set<string>();
  for (const line of content.split('\n')) {
    const set = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (set) {
      active.set(set[1] as string, set[2] as string);
      all.add(set[1] as string);
    }
    const shown = /^#\s*([A-Z][A-Z0-9_]*)=/.exec(line);
    if (shown) all.add(shown[1] as string);
  }
  return { active, all };
}

/** A profile with the user's own values where the examples hold placeholders. */
function filledIn(content: string): string {
  return content
    .replaceAll('123456789012', '210987654321')
    .replaceAll('control-plane.example.com', 'jobs.acme.internal')
    .replaceAll('00fexampleapp01', '00fq1w2e3r4t5y6')
    .replaceAll('example-dataplane-bucket', 'acme-dataplane')
    .replaceAll('myorg-myaccount', 'acme-prod')
    .replace(/\bdp-([a-z]+)-example\b/g, 'dp-$1-prod');
}

function envFile(name: string, content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dpo-config-')), name);
  writeFileSync(path, content);
  return path;
}

/** `config` runs in process (test/support/cli.ts); `run`, the daemon, as a child process. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  if (args[0] === 'config') {
    const r = await runCliInProcess(args, { env });
    return { code: r.code, out: r.stdout, err: r.stderr };
  }
  const p = runCli(args, env);
  const code = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

describe('config/*.env', () => {
  it('ship the three profiles', () => {
    expect(files.sort()).toEqual(['aws.env', 'local.env', 'snowflake.env']);
  });

  it('document every variable of the schema, and only variables the schema knows', () => {
    const known = knownVariables();
    const documented = new Set(files.flatMap((f) => [...variablesOf(text(f)).all]));
    expect([...known].filter((v) => !documented.has(v)).sort()).toEqual([]);
    expect([...documented].filter((v) => !known.has(v)).sort()).toEqual([]);
  });

  it('explain each variable they mention in a comment of its own', () => {
    for (const f of files) {
      const content = text(f);
      const comments = content
        .split('\n')
        .filter((l) => l.startsWith('#') && !/^#\s*[A-Z][A-Z0-9_]*=/.test(l))
        .join('\n');
      for (const v of variablesOf(content).all) {
        expect(comments, `${f}: ${v} has no explanation`).toMatch(new RegExp(`\\b${v}\\b`));
      }
    }
  });

  it('carry no secret values: tokens and keys only as file references', () => {
    for (const f of files) {
      const { active } = variablesOf(text(f));
      for (const secret of [
        'DPO_TOKEN',
        'DPO_API_TOKEN',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'AWS_ACCESS_KEY_ID',
      ]) {
        expect(active.get(secret) ?? '', `${f} sets ${secret}`).toBe('');
      }
      expect(active.get('DPO_TOKEN_FILE'), f).toMatch(/token$/);
    }
  });

  it.each(files)('%s passes `config check` once its placeholders hold real values', async (f) => {
    const r = await cli(['config', 'check', '--env-file', envFile(f, filledIn(text(f)))]);
    expect(r.out).toContain('valid');
    expect(r.code).toBe(0);
  });

  it('aws.env as shipped is refused for its placeholders, each named', async () => {
    const r = await cli(['config', 'check', '--env-file', join(CONFIG, 'aws.env')]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/placeholder\(s\) left from the examples/);
    for (const name of ['DPO_EMR_EXECUTION_ROLE_ARN', 'DPO_EMR_S3_URI', 'DPO_CONTROL_PLANE_URL']) {
      expect(r.out).toMatch(new RegExp(`- ${name}: '[^']+' is a placeholder`));
    }
    expect(r.out).not.toMatch(/AWS_REGION: .*placeholder/);
  });
});

describe('the README', () => {
  it('lists every variable of the schema in its configuration reference, and no other', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const start = readme.indexOf('### Configuration reference');
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n## ', start));
    const listed = new Set([...section.matchAll(/`((?:DPO|AWS)_[A-Z0-9_]+)`/g)].map((m) => m[1] as string));
    const known = knownVariables();
    expect([...known].filter((v) => !listed.has(v)).sort()).toEqual([]);
    expect([...listed].filter((v) => !known.has(v)).sort()).toEqual([]);
  });
});

describe('dataplane-operator config', () => {
  it('check prints every issue of a broken file and exits 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-config-'));
    const bad = join(dir, 'bad.env');
    writeFileSync(
      bad,
      [
        'DPO_DATA_PLANE_ID=has spaces',
        'DPO_EXECUTORS=local,emr-serverless,nosuch',
        'DPO_CONCURENCY=10',
        'DPO_POLL_WAIT_MS=ninety',
        'DPO_TOKEN=inline-secret-value',
        'DPO_EMR_APPLICATION_ID=Not-An-Id',
        'DPO_EMR_S3_URI=https://bucket',
      ].join('\n'),
    );
    const r = await cli(['config', 'check', '--env-file', bad]);
    expect(r.code).toBe(2);
    for (const expected of [
      /DPO_CONCURENCY: not a variable of dataplane-operator \(did you mean DPO_CONCURRENCY\?\)/,
      /DPO_DATA_PLANE_ID: /,
      /DPO_POLL_WAIT_MS: /,
      /unknown executor 'nosuch'/,
      /\[emr-serverless\] DPO_EMR_APPLICATION_ID: expected an EMR Serverless application id/,
      /\[emr-serverless\] DPO_EMR_S3_URI: expected s3:\/\/bucket/,
      /\[emr-serverless\] DPO_EMR_EXECUTION_ROLE_ARN: required/,
      /warning: DPO_TOKEN: a secret given as a value/,
    ]) {
      expect(r.out).toMatch(expected);
    }
    expect(r.out).not.toContain('inline-secret-value');
  });

  it('check finds the job types two enabled executors serve until DPO_ROUTES names who takes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-config-'));
    const aws = filledIn(readFileSync(join(CONFIG, 'aws.env'), 'utf8')).replace(
      /^DPO_EXECUTORS=.*$/m,
      'DPO_EXECUTORS=local,emr-serverless',
    );
    writeFileSync(join(dir, 'both.env'), aws);
    const r = await cli(['config', 'check', '--env-file', join(dir, 'both.env')]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/DPO_ROUTES: job type 'nql-forecast' is served by local and emr-serverless/);
    const types = [
      'forecast',
      'forecast-internal',
      'costs',
      'nql-forecast',
      'materialize-view',
      'datasets_sample',
    ];
    const routes = [...types, 'materialized_views_collect_access_rules_billing_data'].map(
      (t) => `${t}=emr-serverless`,
    );
    writeFileSync(join(dir, 'routed.env'), `${aws}\nDPO_ROUTES=${routes.join(',')}\n`);
    const ok = await cli(['config', 'check', '--env-file', join(dir, 'routed.env')]);
    expect(ok.out).toContain('valid');
    expect(ok.code).toBe(0);
  });

  it('print shows effective values and their source, with secrets redacted', async () => {
    const secret = 'tok-3c1f9a77e2b54e0d9f00aa11';
    const r = await cli(['config', 'print', '--env-file', join(CONFIG, 'aws.env')], {
      DPO_TOKEN: secret,
      // The file's DPO_TOKEN_FILE unset: `run` refuses a token and a token file together.
      DPO_TOKEN_FILE: '',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-9f8e7d',
      DPO_CONCURRENCY: '7',
    });
    expect(r.code).toBe(0);
    expect(r.out).not.toContain(secret);
    expect(r.out).not.toContain('aws-secret-9f8e7d');
    expect(r.out).toMatch(/^DPO_TOKEN\s+= \[redacted\]\s+# environment/m);
    expect(r.out).toMatch(/^AWS_SECRET_ACCESS_KEY\s+= \[redacted\]/m);
    expect(r.out).toMatch(/^DPO_CONCURRENCY\s+= 7\s+# environment/m);
    expect(r.out).toMatch(/^DPO_EMR_APPLICATION_ID\s+= 00fexampleapp01\s+# file/m);
    expect(r.out).toMatch(/^DPO_EMR_CANCEL_GRACE_SECONDS\s+= 120/m);
    const json = await cli(['config', 'print', '--json', '--env-file', join(CONFIG, 'aws.env')], {
      DPO_TOKEN: secret,
    });
    expect(json.out).not.toContain(secret);
    expect(JSON.parse(json.out).DPO_TOKEN.value).toBe('[redacted]');
  });

  it('check refuses a malformed region and points AWS secrets at the credential chain, not a _FILE', async () => {
    const aws = filledIn(text('aws.env'));
    const r = await cli([
      'config',
      'check',
      '--env-file',
      envFile('bad.env', `${aws}\nDPO_EMR_REGION=us-east1\nAWS_SECRET_ACCESS_KEY=aws-secret-9f8e7d\n`),
    ]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/DPO_EMR_REGION: 'us-east1' is not an AWS region/);
    expect(r.out).toMatch(
      /warning: AWS_SECRET_ACCESS_KEY: a secret given as a value; prefer the AWS SDK's credential chain/,
    );
    expect(r.out).not.toContain('AWS_SECRET_ACCESS_KEY_FILE');
    expect(r.out).not.toContain('aws-secret-9f8e7d');
    const token = await cli(['config', 'check', '--env-file', envFile('t.env', `${aws}\nDPO_TOKEN=x\n`)]);
    expect(token.out).toMatch(/warning: DPO_TOKEN: a secret given as a value; prefer DPO_TOKEN_FILE/);
  });
});

describe('run, dev and control-plane refuse their configuration at startup', () => {
  it.each(['run', 'dev', 'control-plane'])(
    '%s: an unknown DPO_ variable, from a file or the environment, exits 2 with a did-you-mean',
    async (command) => {
      const file = envFile('typo.env', 'DPO_CONCURENCY=10\n');
      const r = await cli([command, '--env-file', file], { DPO_POLL_WAIT: '100', DPO_DATA_DIR: tmpdir() });
      expect(r.code).toBe(2);
      expect(r.err).toContain(
        'DPO_CONCURENCY: not a variable of dataplane-operator (did you mean DPO_CONCURRENCY?)',
      );
      expect(r.err).toContain(
        'DPO_POLL_WAIT: not a variable of dataplane-operator (did you mean DPO_POLL_WAIT_MS?)',
      );
    },
  );

  it('a missing --env-file exits 2 with our message, through npm run cli and the bin (Node must not take it)', async () => {
    const root = join(import.meta.dirname, '..', '..');
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME };
    for (const [cmd, args] of [
      [join(root, 'bin', 'dataplane-operator.js'), ['run', '--env-file', 'no-such.env']],
      ['npm', ['run', '--silent', 'cli', '--', 'run', '--env-file', 'no-such.env']],
    ] as const) {
      const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, `${cmd}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/--env-file no-such\.env: no such file/);
    }
  });
});

describe('config check, config print and run agree (one function decides)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-agree-'));
  const token = join(dir, 'operator.token');
  writeFileSync(token, 'tok-agree-5b1e0c9d7a2f\n');
  /** A valid local configuration in the environment, as a pod has it from its ConfigMap. */
  const base = {
    DPO_CONTROL_PLANE_URL: 'http://127.0.0.1:9',
    DPO_DATA_PLANE_ID: 'dp-agree',
    DPO_EXECUTORS: 'local',
    DPO_TOKEN_FILE: token,
    DPO_DATA_DIR: dir,
    DPO_METRICS_LISTEN: 'off',
  };

  it('check --with-env, without --env-file, checks the environment alone: valid', async () => {
    const r = await cli(['config', 'check', '--with-env'], base);
    expect(r.out).toMatch(/^environment: valid/m);
    expect(r.code).toBe(0);
  });

  it.each([
    [
      'an unknown DPO_ name in the environment',
      { DPO_LOG_LEVL: 'x' },
      /DPO_LOG_LEVL: not a variable of dataplane-operator \(did you mean DPO_LOG_LEVEL\?\)/,
    ],
    [
      'a duration with a unit',
      { DPO_POLL_WAIT_MS: '2s' },
      /DPO_POLL_WAIT_MS: expected milliseconds, e\.g\. 2000, got '2s'/,
    ],
    [
      'a count that is not a number',
      { DPO_CONCURRENCY: 'lots' },
      /DPO_CONCURRENCY: expected a whole number, got 'lots'/,
    ],
    [
      'a token and a token file',
      { DPO_TOKEN: 'tok-inline-77aa0b' },
      /DPO_TOKEN, DPO_TOKEN_FILE: set one, not both/,
    ],
    ['an executor that is not built in', { DPO_EXECUTORS: 'lokal' }, /lokal/],
  ])('%s: check says so and exits 2, and run exits 2 with the same message', async (_what, over, message) => {
    const env = { ...base, ...over };
    const check = await cli(['config', 'check', '--with-env'], env);
    expect(check.code).toBe(2);
    expect(check.out).toMatch(message);
    const run = await cli(['run'], env);
    expect(run.code).toBe(2);
    expect(run.err).toMatch(message);
  });

  it('print shows an unknown variable as an error row (never drops it) and exits 2', async () => {
    const file = envFile('typo.env', 'DPO_CONCURENCY=10\n');
    const r = await cli(['config', 'print', '--env-file', file], { ...base, DPO_POLL_WAIT_MS: '2s' });
    expect(r.code).toBe(2);
    expect(r.out).toMatch(
      /^DPO_CONCURENCY\s+= 10\s+# error: DPO_CONCURENCY: not a variable of dataplane-operator \(did you mean DPO_CONCURRENCY\?\)/m,
    );
    expect(r.out).toMatch(/^DPO_POLL_WAIT_MS\s+= 2s\s+# error: .*expected milliseconds, e\.g\. 2000/m);
    expect(r.err).toMatch(/2 issue\(s\): `run` would refuse this configuration/);
    const json = await cli(['config', 'print', '--json', '--env-file', file], base);
    expect(JSON.parse(json.out).DPO_CONCURENCY.error).toMatch(/did you mean DPO_CONCURRENCY/);
  });

  it('check with neither --env-file nor --with-env is a usage error (exit 2)', async () => {
    const r = await cli(['config', 'check'], base);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/give --env-file <file\.\.\.>, --with-env, or both/);
  });
});

describe('placeholders in every profile', () => {
  it.each([
    ['aws.env', ['DPO_CONTROL_PLANE_URL', 'DPO_DATA_PLANE_ID', 'DPO_EMR_EXECUTION_ROLE_ARN']],
    ['snowflake.env', ['DPO_CONTROL_PLANE_URL', 'DPO_DATA_PLANE_ID', 'DPO_SNOWFLAKE_ACCOUNT']],
  ])('%s as shipped: each placeholder named, Snowflake’s myorg-myaccount too', async (f, names) => {
    const r = await cli(['config', 'check', '--env-file', join(CONFIG, f)]);
    expect(r.code).toBe(2);
    for (const name of names) expect(r.out).toMatch(new RegExp(`- ${name}: '[^']+' is a placeholder`));
  });

  it('a placeholder in the environment (a pod’s ConfigMap) is flagged by check --with-env', async () => {
    const r = await cli(['config', 'check', '--with-env', '--env-file', join(CONFIG, 'local.env')], {
      DPO_DATA_PLANE_ID: 'dp-local-example',
      DPO_DATA_DIR: tmpdir(),
    });
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/- DPO_DATA_PLANE_ID: 'dp-local-example' is a placeholder/);
  });
});

describe('the env files and the README say what is built', () => {
  it('each profile’s DPO_EXECUTORS comment names every built-in executor', () => {
    for (const f of files) {
      const comment = /# DPO_EXECUTORS — [\s\S]*?\nDPO_EXECUTORS=/.exec(text(f))?.[0] ?? '';
      for (const name of Object.keys(BUILTIN_EXECUTORS)) expect(comment, `${f}: ${name}`).toContain(name);
    }
  });

  it('the README’s status names every built-in executor as built, and none as not built yet', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    expect(readme).not.toMatch(/not built yet/i);
    const start = readme.indexOf('> **Status.**');
    expect(start).toBeGreaterThan(0);
    const status = readme.slice(start, readme.indexOf('\n\n', start));
    for (const name of Object.keys(BUILTIN_EXECUTORS))
      expect(status, name).toContain(`\`executors/${name}\``);
  });
});
