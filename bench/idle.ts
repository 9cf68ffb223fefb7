/**
 * `npm run bench -- idle`: an idle daemon's RSS and CPU share, a row per executor set (each built-in
 * executor alone, then all six), each daemon (the built JavaScript, as the container image runs it)
 * against the bundled control plane in its own process, daemon on CPU 0 and control plane on CPU 1.
 * CPU is counted from /proc over BENCH_IDLE_MS (default 30 s) of long polls after a 5 s settle; RSS is
 * read at the end. The executors are configured with placeholder values and every endpoint on
 * 127.0.0.1:9 (nothing listens): an idle daemon makes no backend call, and none may leave loopback.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUILTIN_EXECUTORS,
  BUILTIN_EXECUTOR_NAMES as EXECUTOR_NAMES,
  type BuiltinExecutorName as ExecutorName,
} from '../src/daemon/builtin-executors.ts';
import { keyFiles } from '../test/snowflake/support.ts';
import { CLI, freePort, startNode } from './lib.ts';

const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 30_000);
const SETTLE_MS = 5_000;
const DP = 'dp-bench';
const NOWHERE = 'http://127.0.0.1:9';
const CLK_TCK = 100; // Linux USER_HZ

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Placeholder configuration per executor: valid, and every endpoint on loopback. */
function executorEnv(name: ExecutorName): NodeJS.ProcessEnv {
  const aws = {
    AWS_ACCESS_KEY_ID: 'AKIDBENCHIDLE0000000',
    AWS_SECRET_ACCESS_KEY: 'bench-idle-secret-not-used-anywhere',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  switch (name) {
    case 'local':
      return {};
    case 'emr-serverless':
      return {
        ...aws,
        DPO_EMR_REGION: 'us-east-1',
        DPO_EMR_APPLICATION_ID: '00fabcd1234567',
        DPO_EMR_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-spark-jobs',
        DPO_EMR_S3_URI: 's3://dpo-bench/operator',
        DPO_EMR_ENTRY_POINT: 's3://dpo-bench/runner/job_runner.py',
        AWS_ENDPOINT_URL_EMR_SERVERLESS: NOWHERE,
        AWS_ENDPOINT_URL_S3: NOWHERE,
      };
    case 'bedrock':
      return { ...aws, DPO_BEDROCK_REGION: 'us-east-1', AWS_ENDPOINT_URL_BEDROCK_RUNTIME: NOWHERE };
    case 'openai-compatible':
      return { DPO_OPENAI_COMPAT_BASE_URL: `${NOWHERE}/v1` };
    case 'sagemaker':
      return {
        ...aws,
        DPO_SAGEMAKER_REGION: 'us-east-1',
        DPO_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-training',
        DPO_SAGEMAKER_S3_URI: 's3://dpo-bench/operator',
        DPO_SAGEMAKER_SOURCE_URI: 's3://dpo-bench/code/sourcedir.tar.gz',
        DPO_HF_ENDPOINT: NOWHERE,
        AWS_ENDPOINT_URL_SAGEMAKER: NOWHERE,
        AWS_ENDPOINT_URL_S3: NOWHERE,
      };
    case 'snowflake': {
      const k = keyFiles();
      return {
        DPO_SNOWFLAKE_ACCOUNT: 'myorg-bench',
        DPO_SNOWFLAKE_USER: 'DPO_OPERATOR',
        DPO_SNOWFLAKE_ROLE: 'DPO_ROLE',
        DPO_SNOWFLAKE_DATABASE: 'NARRATIVE',
        DPO_SNOWFLAKE_WAREHOUSE: 'DPO_WH',
        DPO_SNOWFLAKE_PRIVATE_KEY_FILE: k.privateKeyFile,
        DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: k.passphraseFile,
        DPO_SNOWFLAKE_URL: NOWHERE,
      };
    }
  }
}

/** DPO_ROUTES for a set: each type served twice goes to the first executor of the set serving it. */
function routes(set: readonly ExecutorName[]): string {
  const owner = new Map<string, ExecutorName>();
  const shared = new Set<string>();
  for (const e of set) {
    for (const t of BUILTIN_EXECUTORS[e]?.jobTypes ?? []) {
      if (owner.has(t)) shared.add(t);
      else owner.set(t, e);
    }
  }
  return [...shared].map((t) => `${t}=${owner.get(t)}`).join(',');
}

async function idleOnce(set: readonly ExecutorName[]): Promise<{ rss: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-idle-'));
  const admin = randomBytes(18).toString('base64url');
  const operator = randomBytes(18).toString('base64url');
  const tokens = join(dir, 'tokens.json');
  writeFileSync(
    tokens,
    JSON.stringify({ admin_tokens: [admin], operator_tokens: [{ token: operator, data_plane_id: DP }] }),
  );
  writeFileSync(join(dir, 'operator.token'), operator, { mode: 0o600 });
  const port = await freePort();
  const metricsPort = await freePort();
  const cp = await startNode([CLI, 'control-plane'], {
    cpu: 1,
    ready: /control plane listening/,
    env: {
      DPO_CP_LISTEN: `127.0.0.1:${port}`,
      DPO_DATA_DIR: dir,
      DPO_CP_TOKENS_FILE: tokens,
      DPO_LOG_LEVEL: 'info',
    },
  });
  try {
    const env: NodeJS.ProcessEnv = {
      DPO_CONTROL_PLANE_URL: `http://127.0.0.1:${port}`,
      DPO_TOKEN_FILE: join(dir, 'operator.token'),
      DPO_DATA_PLANE_ID: DP,
      DPO_DATA_DIR: dir,
      DPO_EXECUTORS: set.join(','),
      DPO_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      DPO_LOG_LEVEL: 'warn',
    };
    for (const e of set) Object.assign(env, executorEnv(e));
    const r = routes(set);
    if (r) env.DPO_ROUTES = r;
    const daemon = await startNode([CLI, 'run'], {
      cpu: 0,
      env,
      ready: async () => {
        const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
        await res.arrayBuffer();
        return res.ok;
      },
    });
    try {
      const pid = daemon.child.pid!;
      await new Promise((res) => setTimeout(res, SETTLE_MS));
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      await new Promise((res) => setTimeout(res, IDLE_MS));
      const cpu = ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
      return { rss: rssMb(pid), cpu };
    } finally {
      await daemon.stop();
    }
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchIdle(): Promise<void> {
  process.stdout.write(
    `\n== Idle daemon per executor set (built JS; ${SETTLE_MS / 1000} s settle, then CPU over ${IDLE_MS / 1000} s of long polls; RSS at the end)\n`,
  );
  const sets: ExecutorName[][] = [...EXECUTOR_NAMES.map((e) => [e]), [...EXECUTOR_NAMES]];
  for (const set of sets) {
    const r = await idleOnce(set);
    const label = set.length === EXECUTOR_NAMES.length ? 'all six' : set.join(',');
    process.stdout.write(
      `  ${label.padEnd(20)} RSS ${r.rss.toFixed(1).padStart(6)} MB   CPU ${r.cpu.toFixed(3)} % of a core   bar RSS ≤ 100 MB; CPU ≤ 0.2 %${r.rss > 100 || r.cpu > 0.2 ? '   OVER' : ''}\n`,
    );
  }
}

if (import.meta.main) await benchIdle();
