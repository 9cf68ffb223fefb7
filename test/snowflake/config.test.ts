/**
 * The Snowflake profile's configuration: every check runs without connecting, `config check`
 * names every issue, and warns about password authentication and key files not mounted here.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSnowflakeConfig, snowflakeConfigWarnings } from '../../executors/snowflake/config.ts';
import { checkConfig } from '../../src/cli/config.ts';
import { ConfigError } from '../../src/lib/config.ts';
import { keyFiles } from './support.ts';

const base = () => {
  const k = keyFiles();
  return {
    DPO_SNOWFLAKE_ACCOUNT: 'myorg-myaccount',
    DPO_SNOWFLAKE_USER: 'DATAPLANE_OPERATOR',
    DPO_SNOWFLAKE_ROLE: 'DATAPLANE_OPERATOR',
    DPO_SNOWFLAKE_DATABASE: 'NARRATIVE',
    DPO_SNOWFLAKE_WAREHOUSE: 'DATAPLANE_WH',
    DPO_SNOWFLAKE_PRIVATE_KEY_FILE: k.privateKeyFile,
    DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: k.passphraseFile,
  } as Record<string, string>;
};
const issues = (env: Record<string, string>) => {
  try {
    loadSnowflakeConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
};

describe('the Snowflake configuration', () => {
  it('accepts a key-pair profile; the pool follows the executor concurrency', () => {
    const c = loadSnowflakeConfig({ ...base(), DPO_EXECUTOR_CONCURRENCY: 'local=3,snowflake=12' });
    expect(c).toMatchObject({
      account: 'myorg-myaccount',
      warehouse: 'DATAPLANE_WH',
      poolSize: 12,
      auth: { kind: 'SNOWFLAKE_JWT' },
    });
    expect(loadSnowflakeConfig({ ...base(), DPO_CONCURRENCY: '7' }).poolSize).toBe(7);
  });

  it('names every missing or malformed variable at once', () => {
    const found = issues({ DPO_SNOWFLAKE_ACCOUNT: 'bad account!', DPO_SNOWFLAKE_WAREHOUSE: 'WH' });
    for (const v of [
      'DPO_SNOWFLAKE_ACCOUNT',
      'DPO_SNOWFLAKE_USER',
      'DPO_SNOWFLAKE_ROLE',
      'DPO_SNOWFLAKE_DATABASE',
    ]) {
      expect(
        found.some((i) => i.startsWith(v)),
        `${v} in ${found.join('; ')}`,
      ).toBe(true);
    }
  });

  it('checks the per-type warehouses, the name patterns and the authenticator', () => {
    const found = issues({
      ...base(),
      DPO_SNOWFLAKE_WAREHOUSES: 'forecast=SPARK_WH,datasets_sample=SAMPLE_WH',
      DPO_SNOWFLAKE_DATASET_TABLE: 'T_{company_id}',
      DPO_SNOWFLAKE_DATASET_SCHEMA: 'C_{tenant}',
      DPO_SNOWFLAKE_PASSWORD: 'hunter2',
    });
    expect(found.join('\n')).toContain("DPO_SNOWFLAKE_WAREHOUSES: 'forecast' is not a Snowflake job type");
    expect(found.join('\n')).toContain('DPO_SNOWFLAKE_DATASET_TABLE: must contain {dataset_id}');
    expect(found.join('\n')).toContain('DPO_SNOWFLAKE_DATASET_SCHEMA: unknown placeholder {tenant}');
    expect(found.join('\n')).toContain('DPO_SNOWFLAKE_PASSWORD: set, but the authenticator is SNOWFLAKE_JWT');
    expect(found.join('\n')).not.toContain('hunter2');
    expect(issues({ ...base(), DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '' })).toEqual([
      'DPO_SNOWFLAKE_PRIVATE_KEY_FILE: required with the SNOWFLAKE_JWT authenticator (key pair)',
    ]);
  });

  it('opens the key with its passphrase when the files are here, and says which is wrong', () => {
    const wrong = join(keyFiles().dir, 'wrong-passphrase');
    writeFileSync(wrong, 'not it\n');
    expect(issues({ ...base(), DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: wrong })).toEqual([
      `DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: the passphrase does not open ${keyFiles().privateKeyFile}`,
    ]);
    // Not mounted here: fine for config check (a warning), the key is read at run time.
    const absent = { ...base(), DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '/var/run/secrets/snowflake/rsa_key.p8' };
    expect(issues(absent)).toEqual([]);
    expect(snowflakeConfigWarnings(absent)).toEqual([
      'DPO_SNOWFLAKE_PRIVATE_KEY_FILE: /var/run/secrets/snowflake/rsa_key.p8 does not exist here (fine if it is mounted at run time)',
    ]);
  });

  it('config check warns that a password is for development only, and never prints it', async () => {
    const env = {
      DPO_CONTROL_PLANE_URL: 'https://jobs.acme.internal',
      DPO_TOKEN_FILE: keyFiles().passphraseFile,
      DPO_DATA_PLANE_ID: 'dp-snowflake-dev',
      DPO_EXECUTORS: 'snowflake',
      ...base(),
      DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '',
      DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: '',
      DPO_SNOWFLAKE_AUTHENTICATOR: 'SNOWFLAKE',
      DPO_SNOWFLAKE_PASSWORD: 's3cret-dev-password',
    };
    const report = await checkConfig(env, new Set(Object.keys(env)));
    expect(report.errors).toEqual([]);
    expect(report.warnings).toContain(
      '[snowflake] DPO_SNOWFLAKE_AUTHENTICATOR: password authentication is for development only; use SNOWFLAKE_JWT (key pair) in production',
    );
    expect(JSON.stringify(report)).not.toContain('s3cret-dev-password');
  });
});
