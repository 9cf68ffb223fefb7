/**
 * What every AWS executor (EMR Serverless; SageMaker and Bedrock later) shares: the client options
 * (region, bounded SDK retries, connection and request timeouts, an endpoint override) and the one
 * classification of an SDK error into a {@link JobError} with a retry decision.
 *
 * Nothing here imports an `@aws-sdk` package at run time (types at most): `src/` stays light, and an
 * executor loads its SDK clients only when it is enabled.
 */
import { JobError } from './index.ts';

/** The settings an AWS executor reads from its configuration. */
export interface AwsClientSettings {
  region: string;
  /** Attempts per API call, including the first (the SDK's standard retry: backoff with jitter). */
  maxAttempts: number;
  /** One HTTP request's timeout (the socket's), in ms. */
  requestTimeoutMs: number;
  /** Establishing the connection, in ms; default 5 s. */
  connectionTimeoutMs?: number;
  /** The service endpoint, when overridden (a fake, a VPC endpoint); else the SDK's resolution. */
  endpoint?: string | undefined;
}

/** Client options for any AWS SDK v3 client (`new XClient({...awsClientOptions(s), …})`). */
export interface AwsClientOptions {
  region: string;
  maxAttempts: number;
  retryMode: 'standard';
  requestHandler: { connectionTimeout: number; requestTimeout: number };
  endpoint?: string;
}

export function awsClientOptions(settings: AwsClientSettings): AwsClientOptions {
  return {
    region: settings.region,
    maxAttempts: settings.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: settings.connectionTimeoutMs ?? 5_000,
      requestTimeout: settings.requestTimeoutMs,
    },
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  };
}

/**
 * The signal of one API call: `signal` (the job's or the lease's) or the call's own bound, whichever
 * comes first. The bound covers the SDK's retries too, which the socket timeout does not.
 */
export function callSignal(signal: AbortSignal, timeoutMs: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
}

/** How long a throttled backend is asked to wait before the job is offered again: 3 to 6 s. */
export const THROTTLED_RETRY_AFTER_MS = { min: 3_000, spread: 3_000 } as const;

/**
 * The transient error budget. An AWS call that still fails after the SDK's own bounded retries (a few
 * seconds) means the service or the network is out: a 5xx, a reset, a timeout, an unreachable
 * endpoint. Retrying the job 2 s later (the bundled control plane's first backoff) would spend every
 * attempt inside a one-minute outage, so the failure asks for a retry delay that grows with the
 * attempt: attempt n waits between `d` and `2d`, `d = min(maxMs, baseMs · factor^(n-1))`.
 *
 * With the defaults, attempt 1 waits 1–2 min, attempt 2 waits 4–8 min, later ones 15–30 min. A job
 * with 3 attempts (the control plane's default) therefore outlasts an outage of at least 5 minutes
 * (typically 7–8) before its last attempt; with 5 attempts, at least 35 minutes.
 */
export const OUTAGE_RETRY_AFTER_MS = { baseMs: 60_000, factor: 4, maxMs: 900_000 } as const;

/** The retry delay an outage failure asks for on `attempt` (1-based), jittered. */
export function outageRetryAfterMs(attempt: number, random: () => number = Math.random): number {
  const { baseMs, factor, maxMs } = OUTAGE_RETRY_AFTER_MS;
  const d = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt - 1));
  return d + Math.floor(random() * d);
}

/**
 * `err` with the outage budget of `attempt` when it is an outage failure from {@link awsError} (for an
 * executor whose helpers classify errors without knowing the job's attempt: call it once, where the
 * job's failure leaves the executor). Anything else is returned as it is.
 */
export function withOutageBudget(err: unknown, attempt: number, random: () => number = Math.random): unknown {
  if (!(err instanceof JobError) || err.code !== 'AWS_UNAVAILABLE' || !err.retryable) return err;
  const details = err.details as { throttled?: boolean } | undefined;
  if (details?.throttled !== false) return err;
  return new JobError(err.code, err.message, {
    retryable: true,
    details: err.details,
    cause: err.cause,
    retryAfterMs: outageRetryAfterMs(attempt, random),
  });
}

/** What {@link awsError} may know about the failing call beyond the error itself. */
export interface AwsErrorOptions {
  /** The job's attempt (`job.attempt`): the outage budget grows with it. Default 1. */
  attempt?: number;
  /** Test hook: the random source in [0, 1). */
  random?: () => number;
}

/**
 * An AWS SDK error as a JobError with a retry decision and a message a user can act on. Retryable
 * failures carry a jittered `retryAfterMs`: a few seconds when throttled (the service answers, only
 * slower), the outage budget ({@link OUTAGE_RETRY_AFTER_MS}) when it did not answer or answered 5xx.
 */
export function awsError(
  err: unknown,
  what: string,
  options: AwsErrorOptions | (() => number) = {},
): JobError {
  const { attempt = 1, random = Math.random } = typeof options === 'function' ? { random: options } : options;
  const e = err as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const message = `${what}: ${name}${e.message ? `: ${e.message}` : ''}`;
  if (
    /ExpiredToken|InvalidClientTokenId|UnrecognizedClient|InvalidSignature|SignatureDoesNotMatch|CredentialsProviderError|TokenRefreshRequired|InvalidAccessKeyId/.test(
      name,
    )
  ) {
    return new JobError(
      'AWS_CREDENTIALS',
      `${message} — the AWS credentials are missing, expired or rejected; check the default credential chain (IRSA role, AWS_PROFILE)`,
      { retryable: false, cause: err },
    );
  }
  if (/AccessDenied/.test(name) || status === 403) {
    return new JobError(
      'AWS_ACCESS_DENIED',
      `${message} — the operator's role lacks a permission (README: IAM policy)`,
      { retryable: false, cause: err },
    );
  }
  const throttled = /Throttl|TooManyRequests|SlowDown/.test(name) || status === 429;
  if (
    throttled ||
    /ServiceUnavailable|InternalServer|RequestTimeout|TimeoutError/.test(name) ||
    (status !== undefined && status >= 500) ||
    status === undefined
  ) {
    return new JobError('AWS_UNAVAILABLE', `${message} (after the SDK's bounded retries)`, {
      retryable: true,
      cause: err,
      details: { aws_error: name, http_status: status ?? null, throttled },
      // Throttled: the service refused for rate, nothing ran; the control plane gives the attempt back.
      throttled,
      retryAfterMs: throttled
        ? THROTTLED_RETRY_AFTER_MS.min + Math.floor(random() * THROTTLED_RETRY_AFTER_MS.spread)
        : outageRetryAfterMs(attempt, random),
    });
  }
  return new JobError('AWS_REQUEST_REJECTED', message, { retryable: false, cause: err });
}
