/**
 * The metrics people alert on, through a running daemon and its ops server: failures by (bounded)
 * code, nql-forecast `Failure` results counted apart, build info, and whether the control plane is
 * reachable (through an outage).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, MAX_FAILURE_CODES } from '../../src/daemon/metrics.ts';
import { type OpsServer, startOpsServer } from '../../src/daemon/ops-server.ts';
import { type Executor, JobError } from '../../src/executor/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { Partition } from '../support/partition.ts';

const SEED = join(import.meta.dirname, '..', 'fixtures', 'seed');
const seed = (name: string) => JSON.parse(readFileSync(join(SEED, `${name}.json`), 'utf8'));

let cp: TestControlPlane | undefined;
let d: TestDaemon | undefined;
let ops: OpsServer | undefined;
afterEach(async () => {
  await ops?.close();
  await d?.stop();
  await cp?.close();
  ops = d = cp = undefined;
});

/** Answers nql-forecast with the seed's Failure result; fails truncates with the code in their input. */
const CODES = ['', 'SNOWFLAKE_QUERY_FAILED', 'lower-case-code'];
const executor: Executor = {
  name: 'metrics-test',
  jobTypes: ['nql-forecast', TRUNCATE],
  async execute(job) {
    if (job.type === 'nql-forecast') return seed('nql-forecast.result.failure');
    const code = CODES[(job.input as { dataset_id: number }).dataset_id] as string;
    throw new JobError(code, 'failed on purpose', { retryable: false });
  },
};

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('metrics of a running daemon', () => {
  it('count failures by code, Failure results apart, and say the build and whether the control plane answers', async () => {
    cp = await startTestControlPlane();
    let partition: Partition | undefined;
    d = await startTestDaemon(cp, {
      executors: [executor],
      pollWaitMs: 200,
      wrapControlPlane: (inner) => {
        partition = new Partition(inner);
        return partition;
      },
    });
    ops = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      daemon: d.daemon,
      metrics: d.metrics,
      staleAfterMs: 7_000,
      unreadyAfterMs: 600,
    });
    const scrape = async () => (await fetch(`${ops!.url}/metrics`)).text();
    const { submit } = clients(cp);
    await submit('nql-forecast', seed('nql-forecast.input'));
    await submit(TRUNCATE, { dataset_id: 1 }, { max_attempts: 1 });
    await submit(TRUNCATE, { dataset_id: 2 }, { max_attempts: 1 });
    let text = '';
    await waitFor(
      async () => {
        text = await scrape();
        return (
          sample(text, 'dpo_job_result_failures_total') === 1 &&
          sample(text, 'dpo_job_failures_total', { code: 'EXECUTOR_ERROR' }) === 1
        );
      },
      { what: 'the three outcomes counted' },
    );
    expect(
      sample(text, 'dpo_job_result_failures_total', { job_type: 'nql-forecast', executor: 'metrics-test' }),
    ).toBe(1);
    expect(sample(text, 'dpo_job_outcomes_total', { job_type: 'nql-forecast', outcome: 'complete' })).toBe(1);
    expect(
      sample(text, 'dpo_job_failures_total', { job_type: TRUNCATE, code: 'SNOWFLAKE_QUERY_FAILED' }),
    ).toBe(1);
    // A lower-case code is not a contract code: the daemon reports the failure as EXECUTOR_ERROR.
    expect(text).not.toContain('lower-case-code');
    expect(sample(text, 'dpo_build_info', { version: '0.1.0', node_version: process.versions.node })).toBe(1);
    expect(sample(text, 'dpo_control_plane_reachable')).toBe(1);

    partition!.cutNow('reset');
    await waitFor(async () => sample(await scrape(), 'dpo_control_plane_reachable') === 0, {
      what: 'unreachable',
    });
    partition!.heal();
    await waitFor(async () => sample(await scrape(), 'dpo_control_plane_reachable') === 1, {
      what: 'reachable again',
    });
  });
});

describe('the failure-code label', () => {
  it('is bounded: the first distinct codes, then OTHER; malformed codes are OTHER', () => {
    const m = createMetrics({ defaultMetrics: false });
    expect(m.failureCode('TIMEOUT')).toBe('TIMEOUT');
    expect(m.failureCode('not a code')).toBe('OTHER');
    for (let i = 0; i < MAX_FAILURE_CODES * 2; i++) m.failureCode(`CODE_${i}`);
    expect(m.failureCode('CODE_0')).toBe('CODE_0');
    expect(m.failureCode('TIMEOUT')).toBe('TIMEOUT');
    expect(m.failureCode(`CODE_${MAX_FAILURE_CODES * 2 - 1}`)).toBe('OTHER');
  });
});
