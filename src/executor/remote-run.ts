/**
 * The remote-run protocol, written once for every executor that drives work on a remote service
 * (an EMR job run, a Snowflake query, a SageMaker training job). The executor supplies a few
 * callbacks (submit, find by intent, poll, cancel, and how to read a status); this keeps the
 * guarantees:
 *
 * - **Submit at most once per intent.** An intent (the idempotency token of one submission) is
 *   checkpointed BEFORE the submission and the handle right after. A crash before the first save
 *   means nothing was asked for; a crash between the saves is resolved from the intent (looked up
 *   with `findByIntent`, or submitted again with the same token, which the service answers with the
 *   existing work); a crash after reattaches by handle. A claim that carries a handle polls it and
 *   never submits again, unless the work it names ended badly under an earlier attempt: then this
 *   attempt is the next submission, with a fresh intent.
 * - **Poll at jittered, growing intervals that honour the signal.**
 * - **`cancel` and `timeout` stop the remote work and confirm it stopped** before the abort reason
 *   is rethrown (and so before the daemon reports `cancelled` or `TIMEOUT`). A confirmation that does
 *   not come (a timeout, throttling, the network) is retried with backoff for as long as the lease
 *   is held; `leaseSignal` ends it, and the job then stays `pending_cancellation` for the next holder.
 *   A cancel that arrives while reattaching stops the reattached work: the handle is known from the
 *   checkpoint before any call is made.
 *   If the work succeeded before it could be stopped, its result is returned (a cancel does not
 *   undo finished work).
 * - **A failure that ends the job for good stops the work too** (not retryable, or the last
 *   attempt): nobody would reattach to it. A retryable failure with attempts left leaves it running
 *   for the next attempt, and so does a throttled one on any attempt: the control plane gives a
 *   throttled attempt back, so it is never the last.
 * - **Stopping never depends on reading the status.** The stop is sent whenever the work is not
 *   known to have ended, including when the status read itself fails (access denied, say); then it
 *   is confirmed as far as possible. A failure whose stop could not be confirmed within the bound
 *   says so in its details (`remote_work: "unconfirmed"`, with the checkpoint naming the work).
 * - **`lost` and `shutdown` leave the remote work running**: a peer, or this job's next holder,
 *   reattaches from the checkpoint.
 * - **`rescheduled` stops it**: the job starts fresh and nobody will reattach, so the work this
 *   execution started is stopped and confirmed (bounded by `stopBoundMs`: the lease is gone) before
 *   the execution settles. When that holder is gone, the control plane keeps the cleared checkpoint
 *   in the job's `stale_checkpoints`, and the next holder stops that work first, before it starts
 *   fresh (or before it confirms a cancel).
 */
import type { Checkpoint } from '../contract/index.ts';
import { backoffDelay, sleep } from '../lib/retry.ts';
import { abortReasonOf, type ExecuteContext, JobError, type JobHandle } from './index.ts';

/** Where a remote run stands. */
export type RemotePhase = 'active' | 'succeeded' | 'ended';

/** What a submission is known by before the service has answered: its idempotency token. */
export interface Intent {
  /** The attempt that made (or last resumed) this submission. */
  readonly attempt: number;
}

export interface RemoteRunOps<I extends Intent, H, S> {
  /** What the work is called in logs and progress, e.g. `EMR job run`. */
  readonly what: string;
  /** Reads a checkpoint this executor wrote; undefined when it is not one of ours. */
  read(checkpoint: Checkpoint): { intent: I; handle?: H | undefined } | undefined;
  /** The checkpoint of an intent, without its handle (before submission) or with it (after). */
  write(intent: I, handle?: H): Checkpoint;
  /** A new submission's intent; `previous` is the intent of work that ended badly (a retry). */
  newIntent(attempt: number, previous: I | undefined): I;
  /**
   * Submits idempotently: the same intent twice gives the same remote work. `signal` is aborted
   * only when the lease goes: once asked for, the answer is needed even when a cancel arrives, so
   * the work can be stopped rather than orphaned. Add your own request timeout.
   */
  submit(intent: I, signal: AbortSignal): Promise<H>;
  /**
   * Finds the work submitted under `intent` by a holder that died before checkpointing its handle;
   * undefined when there is none. Without it the intent is submitted again (idempotent).
   */
  findByIntent?(intent: I, signal: AbortSignal): Promise<H | undefined>;
  /** Reads the work's status once. */
  poll(handle: H, signal: AbortSignal): Promise<S>;
  /** Whether the work is still going, succeeded, or ended otherwise (failed, cancelled). */
  phase(status: S): RemotePhase;
  /** Each status as it is read (progress). */
  onStatus?(handle: H, status: S): void;
  /** The result of work that succeeded. */
  result(handle: H, status: S, signal: AbortSignal): Promise<unknown>;
  /** The failure of work that ended otherwise. */
  failure(handle: H, status: S, signal: AbortSignal): Promise<JobError>;
  /** Asks the service to stop the work; called again if it has not stopped after `recancelAfterMs`. */
  cancel(handle: H, signal: AbortSignal): Promise<void>;
}

export interface RemoteRunOptions {
  /** Shortest and longest pause between two polls (the pause grows, with jitter). */
  pollMinMs: number;
  pollMaxMs: number;
  /** While confirming a cancel: ask again when the work has not stopped after this long. */
  recancelAfterMs: number;
  /**
   * How long a stop that nothing else bounds may take to confirm (a failed job's work, a
   * rescheduled job's work): default 4 × `recancelAfterMs`.
   */
  stopBoundMs?: number;
  /** Test hook: the random source of the jitter. */
  random?: () => number;
}

/** Runs (or reattaches to) the job's remote work until it ends; see the header for the guarantees. */
export async function runRemote<I extends Intent, H, S>(
  job: JobHandle,
  ctx: ExecuteContext,
  ops: RemoteRunOps<I, H, S>,
  options: RemoteRunOptions,
): Promise<unknown> {
  const saved = ctx.checkpoint ? ops.read(ctx.checkpoint) : undefined;
  if (ctx.checkpoint && saved === undefined)
    ctx.log.warn('ignoring a checkpoint this executor did not write');
  let intent = saved?.intent;
  let handle = saved?.handle;
  /** An intent is checkpointed and its submission's fate unknown until the handle is found. */
  let unresolved = intent !== undefined && handle === undefined;
  const pause = (n: number) =>
    options.pollMinMs +
    backoffDelay(n, options.pollMinMs, options.pollMaxMs - options.pollMinMs, options.random);
  const stopBoundMs = options.stopBoundMs ?? 4 * options.recancelAfterMs;
  /** The work is known to have ended (its status said so): nothing to stop. */
  let ended = false;
  await stopStale(ctx, ops, options, pause);
  try {
    if (unresolved && intent !== undefined && ops.findByIntent) {
      handle = await ops.findByIntent(intent, ctx.leaseSignal);
      if (handle !== undefined) {
        ctx.log.info(`found the ${ops.what} of an unfinished submission`);
        await ctx.saveCheckpoint(ops.write(intent, handle));
      }
      // Looked up and not there: nothing was submitted.
      unresolved = false;
    }
    if (handle !== undefined && intent !== undefined && intent.attempt < job.attempt && !ctx.signal.aborted) {
      const status = await ops.poll(handle, ctx.signal);
      if (ops.phase(status) === 'ended') {
        ctx.log.info(`the previous attempt's ${ops.what} ended; submitting again`);
        intent = ops.newIntent(job.attempt, intent);
        handle = undefined;
      } else {
        ctx.log.info(`reattaching to the ${ops.what}`);
      }
    } else if (handle !== undefined) {
      ctx.log.info(`reattaching to the ${ops.what}`);
    }
    if (handle === undefined) {
      // Aborted before asking: nothing was submitted, or (an unfinished submission) the cancel path
      // below learns what was.
      ctx.signal.throwIfAborted();
      if (intent === undefined) intent = ops.newIntent(job.attempt, undefined);
      else if (unresolved) intent = { ...intent, attempt: job.attempt };
      await ctx.saveCheckpoint(ops.write(intent));
      unresolved = true;
      handle = await ops.submit(intent, ctx.leaseSignal);
      unresolved = false;
      await ctx.saveCheckpoint(ops.write(intent, handle));
      ctx.log.info(`${ops.what} submitted`);
    }
    for (let n = 0; ; n++) {
      ctx.signal.throwIfAborted();
      const status = await ops.poll(handle, ctx.signal);
      ops.onStatus?.(handle, status);
      const phase = ops.phase(status);
      if (phase === 'succeeded') {
        ended = true;
        return await ops.result(handle, status, ctx.signal);
      }
      if (phase === 'ended') {
        ended = true;
        throw await ops.failure(handle, status, ctx.signal);
      }
      await sleep(pause(n), ctx.signal);
    }
  } catch (err) {
    const reason = abortReasonOf(ctx.signal);
    if (reason === 'cancel' || reason === 'timeout') {
      if (handle === undefined && unresolved && intent !== undefined) {
        handle = await resolve(ctx, ops, intent, pause);
      }
      if (handle !== undefined) {
        const ended = await stopAndConfirm(ctx, ops, handle, options, pause, ctx.leaseSignal);
        // The work finished before it could be stopped: its result stands (a cancel does not undo
        // finished work), and the daemon reports it complete.
        if (ops.phase(ended) === 'succeeded') return await ops.result(handle, ended, ctx.leaseSignal);
      }
    }
    if (reason === 'rescheduled' && !ended) {
      // The job starts fresh: nobody will reattach to this work. Stop it, bounded (the lease is
      // gone, so nothing can be written; if this fails, the job's stale_checkpoints lead the next
      // holder to it).
      const bound = AbortSignal.timeout(stopBoundMs);
      try {
        if (handle === undefined && unresolved && intent !== undefined) {
          handle = await resolveOnce(ops, intent, bound);
        }
        if (handle !== undefined) {
          ctx.log.warn(`the job was rescheduled: stopping the ${ops.what} this execution started`);
          await stopAndConfirm(ctx, ops, handle, options, pause, bound);
        }
      } catch (e) {
        ctx.log.error(`could not confirm that the ${ops.what} of a rescheduled job stopped`, {
          error: message(e),
        });
      }
    }
    if (reason !== undefined) throw ctx.signal.reason;
    // A failure that ends the job for good (not retryable, or its last attempt) must not leave the
    // work running with nobody to stop it; a retryable one leaves it for the next attempt to reattach.
    // A throttled failure is never final: the control plane gives its attempt back.
    const retryable = err instanceof JobError && err.retryable;
    const throttled = retryable && err.throttled;
    const final = !retryable || (job.attempt >= job.maxAttempts && !throttled);
    if (final && handle !== undefined && !ended) {
      ctx.log.warn(`the job fails for good: stopping the ${ops.what}`, { error: message(err) });
      // Bounded: the failure is reported either way, saying whether the stop was confirmed.
      const bound = AbortSignal.any([ctx.leaseSignal, AbortSignal.timeout(stopBoundMs)]);
      const confirmed = await stopAndConfirm(ctx, ops, handle, options, pause, bound).then(
        () => true,
        (e: unknown) => {
          ctx.log.error(`could not confirm that the ${ops.what} of a failed job stopped`, {
            error: message(e),
          });
          return false;
        },
      );
      if (!confirmed && intent !== undefined) throw unconfirmed(err, ops.write(intent, handle));
    }
    throw err;
  }
}

/**
 * A cancel arrived while a submission's fate was unknown (it failed or timed out): learn what the
 * service did with the intent, retrying while the lease is held, so that work is never orphaned.
 */
async function resolve<I extends Intent, H, S>(
  ctx: ExecuteContext,
  ops: RemoteRunOps<I, H, S>,
  intent: I,
  pause: (n: number) => number,
): Promise<H | undefined> {
  for (let n = 0; ; n++) {
    ctx.leaseSignal.throwIfAborted();
    try {
      if (ops.findByIntent) return await ops.findByIntent(intent, ctx.leaseSignal);
      const handle = await ops.submit(intent, ctx.leaseSignal);
      await ctx.saveCheckpoint(ops.write(intent, handle));
      return handle;
    } catch (err) {
      ctx.leaseSignal.throwIfAborted();
      ctx.log.warn(`could not learn whether the ${ops.what} was submitted; retrying`, {
        error: message(err),
      });
      await sleep(pause(n), ctx.leaseSignal);
    }
  }
}

/**
 * Asks the service to stop the work and polls until it says the work ended, returning its final
 * status. Nothing here gives up while `signal` lives: an unconfirmed cancel is retried with backoff.
 * For a cancel that is the lease signal (lease lost, shutdown), which leaves the job
 * `pending_cancellation` for the next holder.
 */
async function stopAndConfirm<I extends Intent, H, S>(
  ctx: ExecuteContext,
  ops: RemoteRunOps<I, H, S>,
  handle: H,
  options: RemoteRunOptions,
  pause: (n: number) => number,
  signal: AbortSignal,
): Promise<S> {
  let askedAt: number | undefined;
  for (let n = 0; ; n++) {
    signal.throwIfAborted();
    let status: S | undefined;
    try {
      status = await ops.poll(handle, signal);
      if (ops.phase(status) !== 'active') {
        if (askedAt !== undefined) ctx.log.info(`${ops.what} stopped`);
        return status;
      }
    } catch (err) {
      signal.throwIfAborted();
      // The status cannot be read (access denied, a malformed answer, the network): the stop is
      // sent all the same; only a status that says the work ended can confirm it.
      ctx.log.warn(
        `could not confirm that the ${ops.what} stopped (its status cannot be read); asking it to stop anyway`,
        {
          error: message(err),
        },
      );
    }
    if (askedAt === undefined || Date.now() - askedAt >= options.recancelAfterMs) {
      try {
        await ops.cancel(handle, signal);
        askedAt = Date.now();
        ctx.log.info(`${ops.what} cancel requested`);
        ctx.progress({ message: `stopping the ${ops.what}` });
      } catch (err) {
        signal.throwIfAborted();
        ctx.log.warn(`could not confirm that the ${ops.what} stopped: asking it to stop failed; retrying`, {
          error: message(err),
        });
      }
    }
    await sleep(pause(n), signal);
  }
}

/**
 * One lookup of what the service did with an intent, for a stop that cannot wait (a rescheduled
 * job's work): the intent's work by lookup, or by submitting the same token again (idempotent).
 */
async function resolveOnce<I extends Intent, H, S>(
  ops: RemoteRunOps<I, H, S>,
  intent: I,
  signal: AbortSignal,
): Promise<H | undefined> {
  if (ops.findByIntent) return await ops.findByIntent(intent, signal);
  return await ops.submit(intent, signal);
}

/**
 * Remote work a reschedule left behind (the job's `stale_checkpoints`): stopped and confirmed
 * before this holder starts fresh, for as long as the lease is held; then the control plane is
 * told to forget them. A checkpoint this executor did not write is left alone (logged).
 */
async function stopStale<I extends Intent, H, S>(
  ctx: ExecuteContext,
  ops: RemoteRunOps<I, H, S>,
  options: RemoteRunOptions,
  pause: (n: number) => number,
): Promise<void> {
  const stale = ctx.staleCheckpoints ?? [];
  // Once per job execution, however many remote runs it drives (a multi-step executor).
  if (stale.length === 0 || staleStopped.has(stale)) return;
  for (const checkpoint of stale) {
    const saved = ops.read(checkpoint);
    if (saved === undefined) {
      ctx.log.warn('a rescheduled attempt left a checkpoint this executor did not write; not stopping it');
      continue;
    }
    let handle = saved.handle;
    if (handle === undefined) {
      for (let n = 0; handle === undefined; n++) {
        ctx.leaseSignal.throwIfAborted();
        try {
          handle = await resolveOnce(ops, saved.intent, ctx.leaseSignal);
          if (handle === undefined) break; // looked up and not there: nothing was submitted
        } catch (err) {
          ctx.leaseSignal.throwIfAborted();
          ctx.log.warn(`could not learn whether a rescheduled attempt's ${ops.what} exists; retrying`, {
            error: message(err),
          });
          await sleep(pause(n), ctx.leaseSignal);
        }
      }
      if (handle === undefined) continue;
    }
    ctx.log.info(`stopping the ${ops.what} a rescheduled attempt left running`);
    await stopAndConfirm(ctx, ops, handle, options, pause, ctx.leaseSignal);
  }
  await ctx.clearStaleCheckpoints?.();
  staleStopped.add(stale);
}

/** Stale checkpoint lists already stopped and cleared (by identity: one per execution context). */
const staleStopped = new WeakSet<readonly Checkpoint[]>();

/** `err` with its details saying the remote work named by `checkpoint` may still run. */
function unconfirmed(err: unknown, checkpoint: Checkpoint): JobError {
  const base =
    err instanceof JobError ? err : new JobError('INTERNAL', message(err), { retryable: true, cause: err }); // as coerceError would
  const details =
    base.details !== null && typeof base.details === 'object' && !Array.isArray(base.details)
      ? base.details
      : base.details === undefined
        ? {}
        : { details: base.details };
  return new JobError(base.code, base.message, {
    retryable: base.retryable,
    details: { ...details, remote_work: 'unconfirmed', checkpoint },
    cause: base.cause,
    ...(base.retryAfterMs === undefined ? {} : { retryAfterMs: base.retryAfterMs }),
    throttled: base.throttled,
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The failure of remote work that someone else cancelled. */
export function cancelledElsewhere(what: string, id: string): JobError {
  return new JobError('REMOTE_CANCELLED', `the ${what} ${id} was cancelled outside the operator`, {
    retryable: false,
  });
}
