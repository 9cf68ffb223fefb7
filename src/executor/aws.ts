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
 * An AWS SDK error as a JobError with a retry decision and a message a user can act on. Throttling
 * also carries a jittered `retryAfterMs`, so a throttled backend is retried later rather than at once.
 */
export function awsError(err: unknown, what: string, random: () => number = Math.random): JobError {
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
      ...(throttled
        ? {
            retryAfterMs:
              THROTTLED_RETRY_AFTER_MS.min + Math.floor(random() * THROTTLED_RETRY_AFTER_MS.spread),
          }
        : {}),
    });
  }
  return new JobError('AWS_REQUEST_REJECTED', message, { retryable: false, cause: err });
}
