/**
 * Issue 22, items 7 and 8, through the real SageMaker client against the fake (awsJson1_1 errors as
 * `{__type, message}`):
 * - a throttled DescribeTrainingJob on the last attempt is not final: the training job is left
 *   running (the control plane gives the attempt back, and the next claim reattaches);
 * - when DescribeTrainingJob fails for good (access denied), the job fails AND StopTrainingJob is
 *   sent, whatever the status read says; a stop that cannot be confirmed is reported in the
 *   failure's details (`remote_work: "unconfirmed"`, with the checkpoint naming the training job).
 *
 * Facts relied on: `ThrottlingException` and `AccessDeniedException` are AWS common errors answered
 * with HTTP 400 (AWS API reference, "Common Errors"); the SDK retries `ThrottlingException` as a
 * throttling error (`THROTTLING_ERROR_CODES` in node_modules/@smithy/core/dist-es/submodules/retry/
 * service-error-classification/constants.js) up to its `maxAttempts` (DPO_SAGEMAKER_MAX_ATTEMPTS,
 * 2 in these tests), so two injected throttles exhaust one Describe.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadSageMakerConfig } from '../../executors/sagemaker/config.ts';
import { SageMakerExecutor } from '../../executors/sagemaker/executor.ts';
import { JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { waitFor } from '../helpers.ts';
import { type SmFakes, startSmFakes, trainingInput } from './support.ts';

let f: SmFakes | undefined;
let executor: SageMakerExecutor | undefined;
afterEach(async () => {
  await executor?.close();
  await f?.stop();
  executor = undefined;
  f = undefined;
});

async function started(cancelWaitMs = '200') {
  f = await startSmFakes({ mode: 'manual' });
  const fakes = f;
  executor = new SageMakerExecutor(
    loadSageMakerConfig({ ...fakes.env, DPO_SAGEMAKER_CANCEL_WAIT_MS: cancelWaitMs }),
  );
  const t = createTestContext();
  const running = executor.execute(
    testJob('model_training_run', trainingInput(), { attempt: 1, maxAttempts: 1 }),
    t.ctx,
  );
  const tj = await waitFor(() => (t.checkpoint as any)?.created && fakes.sm.onlyJob(), {
    what: 'the training job',
  });
  return { fakes, t, running, tj };
}

describe('SageMaker: stopping remote work', () => {
  it('leaves the training job running when DescribeTrainingJob is throttled on the last attempt', async () => {
    const { fakes, running, tj } = await started('15000');
    fakes.sm.failNext(
      'DescribeTrainingJob',
      { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' },
      2,
    );
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobError);
    expect(err).toMatchObject({ retryable: true, throttled: true });
    expect(tj.status).toBe('InProgress');
    expect(tj.stops).toBe(0);
    expect(fakes.sm.calls.StopTrainingJob).toBe(0);
  });

  it('sends StopTrainingJob when DescribeTrainingJob is denied for good, and reports the stop unconfirmed with the job', async () => {
    const { fakes, running, tj } = await started();
    fakes.sm.failNext(
      'DescribeTrainingJob',
      {
        status: 400,
        type: 'AccessDeniedException',
        message: 'User is not authorized to perform: sagemaker:DescribeTrainingJob',
      },
      10_000,
    );
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'AWS_ACCESS_DENIED',
      retryable: false,
      details: { remote_work: 'unconfirmed', checkpoint: { name: tj.name, created: true } },
    });
    expect(fakes.sm.calls.StopTrainingJob).toBeGreaterThanOrEqual(1);
    expect(tj.stops).toBeGreaterThanOrEqual(1);
    expect(tj.status).toBe('Stopping');
  });
});
