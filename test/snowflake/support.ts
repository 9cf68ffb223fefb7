/**
 * What the Snowflake tests share: an encrypted key pair on disk (the public half registered with the
 * fake), a fake Snowflake, and the executor's environment pointing at it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeSnowflake, startSnowflakeFake } from '../fakes/snowflake.ts';

// Set before snowflake-sdk loads anywhere in the process: no cloud-metadata probes.
process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION = 'true';

export const ACCOUNT = 'myorg-test';
export const USER = 'DPO_OPERATOR';
export const DATABASE = 'NARRATIVE';

export interface KeyFiles {
  dir: string;
  privateKeyFile: string;
  passphraseFile: string;
  publicKeyPem: string;
}

let keys: KeyFiles | undefined;
/** One RSA key pair per test file (generation costs ~50 ms), encrypted with a passphrase. */
export function keyFiles(): KeyFiles {
  if (keys) return keys;
  const dir = mkdtempSync(join(tmpdir(), 'dpo-sf-'));
  const passphrase = 'correct horse battery staple';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase },
  });
  const privateKeyFile = join(dir, 'rsa_key.p8');
  const passphraseFile = join(dir, 'passphrase');
  writeFileSync(privateKeyFile, privateKey, { mode: 0o600 });
  writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
  keys = { dir, privateKeyFile, passphraseFile, publicKeyPem: publicKey };
  return keys;
}

export const OAUTH_TOKEN = 'oauth-access-token-for-tests';

export function startFake(): Promise<FakeSnowflake> {
  return startSnowflakeFake({
    account: ACCOUNT,
    user: USER,
    publicKeyPem: keyFiles().publicKeyPem,
    oauthToken: OAUTH_TOKEN,
    database: DATABASE,
  });
}

/** The executor's variables for a fake (fast polls for tests). */
export function snowflakeEnv(
  fake: FakeSnowflake,
  extra: Record<string, string> = {},
): Record<string, string> {
  const k = keyFiles();
  return {
    DPO_SNOWFLAKE_ACCOUNT: ACCOUNT,
    DPO_SNOWFLAKE_USER: USER,
    DPO_SNOWFLAKE_ROLE: 'DPO_ROLE',
    DPO_SNOWFLAKE_DATABASE: DATABASE,
    DPO_SNOWFLAKE_WAREHOUSE: 'DPO_WH',
    DPO_SNOWFLAKE_PRIVATE_KEY_FILE: k.privateKeyFile,
    DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: k.passphraseFile,
    DPO_SNOWFLAKE_URL: fake.url,
    DPO_SNOWFLAKE_POLL_MIN_MS: '10',
    DPO_SNOWFLAKE_POLL_MAX_MS: '50',
    DPO_SNOWFLAKE_CANCEL_WAIT_MS: '500',
    DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS: '5000',
    DPO_SNOWFLAKE_POOL_SIZE: '4',
    ...extra,
  };
}
