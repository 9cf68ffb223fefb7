/**
 * A test kit for executors: a job handle and an execution context as the daemon would give them,
 * with everything the executor does recorded (checkpoints, progress, log lines) and the daemon's
 * aborts at hand (`abort('cancel')`, `abort('lost')`, …, with the same two-signal semantics). So an
 * executor's tests drive it directly, without a daemon or a control plane, and without building the
 * context by hand.
 */
import type { Checkpoint, Progress } from '../contract/index.ts';
import type { AbortReason, ExecuteContext, JobHandle } from './index.ts';
import { JobSignals } from './signals.ts';

export interface RecordedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown> | undefined;
}

export interface TestContext {
  readonly ctx: ExecuteContext;
  /** Every checkpoint saved, oldest first. */
  readonly checkpoints: Checkpoint[];
  /** The latest checkpoint (the one a next holder would be given), or the initial one. */
  readonly checkpoint: Checkpoint | null;
  readonly progress: Progress[];
  readonly lines: RecordedLine[];
  /**
   * Aborts as the daemon does: `cancel` and `timeout` abort `signal` only; `lost` and `shutdown`
   * abort `leaseSignal` too (and `signal`, unless it was aborted already).
   */
  abort(reason: AbortReason): void;
}

export interface TestContextOptions {
  /** The checkpoint a previous holder saved (reattach). */
  checkpoint?: Checkpoint | null;
  /** The job's deadline (epoch ms); default an hour from now. */
  deadline?: number;
  /** Runs before each checkpoint is recorded; throw to simulate a control plane refusing it. */
  onSaveCheckpoint?: (checkpoint: Checkpoint) => void | Promise<void>;
}

export function createTestContext(options: TestContextOptions = {}): TestContext {
  const signals = new JobSignals();
  const checkpoints: Checkpoint[] = [];
  const progress: Progress[] = [];
  const lines: RecordedLine[] = [];
  let latest: Checkpoint | null = options.checkpoint ?? null;
  const line =
    (level: RecordedLine['level']) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, msg, fields });
    };
  const ctx: ExecuteContext = {
    signal: signals.signal,
    leaseSignal: signals.leaseSignal,
    deadline: options.deadline ?? Date.now() + 3_600_000,
    checkpoint: options.checkpoint ?? null,
    async saveCheckpoint(checkpoint) {
      await options.onSaveCheckpoint?.(checkpoint);
      checkpoints.push(checkpoint);
      latest = checkpoint;
    },
    progress(p) {
      progress.push(p);
    },
    log: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
  };
  return {
    ctx,
    checkpoints,
    get checkpoint() {
      return latest;
    },
    progress,
    lines,
    abort(reason) {
      signals.abort(reason);
    },
  };
}

/** A job handle for executor tests; `attempt` 1, company 56, data plane `dp-test` unless given. */
export function testJob<I>(type: string, input: I, overrides: Partial<JobHandle<I>> = {}): JobHandle<I> {
  return {
    id: overrides.id ?? crypto.randomUUID(),
    type,
    attempt: 1,
    maxAttempts: 3,
    companyId: 56,
    dataPlaneId: 'dp-test',
    input,
    ...overrides,
  };
}
