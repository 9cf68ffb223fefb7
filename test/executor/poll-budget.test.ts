/**
 * The status poll of every remote executor backs off to a cap that keeps an hour-long job to a few
 * hundred status calls (issue 27). The pause between two polls is `min + jitter·min(max − min,
 * min·2^n)` with the jitter uniform in [0, 1) (src/executor/remote-run.ts); its expectation, summed
 * over an hour at each executor's default bounds, gives the expected calls per job-hour. Measured
 * against the fakes by `npm run bench -- poll-cost` (EMR 210–219, Snowflake 246, SageMaker 104–109).
 */
import { describe, expect, it } from 'vitest';
import { EmrServerlessEnv } from '../../executors/emr-serverless/config.ts';
import { SageMakerEnv } from '../../executors/sagemaker/config.ts';
import { SnowflakeEnv } from '../../executors/snowflake/config.ts';

const BUDGET = 300;

function expectedCallsPerHour(min: number, max: number): number {
  let t = 0;
  let calls = 0;
  for (let n = 0; t < 3_600_000; n++) {
    calls++;
    t += min + 0.5 * Math.min(max - min, min * 2 ** n);
  }
  return calls;
}

const defaults = (schema: { shape: Record<string, { parse(v: unknown): unknown }> }, prefix: string) => [
  Number(schema.shape[`${prefix}_POLL_MIN_MS`]!.parse(undefined)),
  Number(schema.shape[`${prefix}_POLL_MAX_MS`]!.parse(undefined)),
];

describe('remote status polling per job-hour, at the default bounds', () => {
  it.each([
    ['emr-serverless', defaults(EmrServerlessEnv, 'DPO_EMR')],
    ['snowflake', defaults(SnowflakeEnv, 'DPO_SNOWFLAKE')],
    ['sagemaker', defaults(SageMakerEnv, 'DPO_SAGEMAKER')],
  ] as const)('%s costs at most a few hundred status calls', (_name, [min, max]) => {
    expect(expectedCallsPerHour(min!, max!)).toBeLessThanOrEqual(BUDGET);
  });

  it('the model counts what the schedule implies (a fixed pause of 10 s is 360 calls an hour)', () => {
    expect(expectedCallsPerHour(10_000, 10_000)).toBe(360);
  });
});
