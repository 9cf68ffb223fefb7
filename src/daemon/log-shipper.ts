/**
 * Job log shipping. An executor's log lines go to the daemon's own log (pino, with job_id, job_type
 * and executor) and are buffered per job; once per interval the lines of every running job go to
 * the control plane in ONE request, and the reporter ships a finishing job's last lines before its
 * outcome. Logs are best effort: a failed shipment is dropped (counted), never retried ahead of the
 * outcomes, and a job's buffer is capped.
 */
import type { Logger } from 'pino';
import type { AppendLogsBatchRequest } from '../contract/index.ts';
import type { JobLogger } from '../executor/index.ts';
import { redactSecrets } from '../lib/secrets.ts';
import { type ControlPlane, describeError } from './control-plane.ts';
import type { Metrics } from './metrics.ts';
import type { Execution } from './slots.ts';

export interface LogShipperContext {
  controlPlane: ControlPlane;
  operatorId: string;
  log: Logger;
  metrics: Metrics;
  stopSignal: AbortSignal;
  /** Most lines buffered per job; more are dropped (counted). */
  maxBufferedLines: number;
  /** The jobs whose lines the interval ships. */
  running(): Iterable<Execution>;
}

export class LogShipper {
  private readonly c: LogShipperContext;
  private timer: NodeJS.Timeout | null = null;

  constructor(context: LogShipperContext) {
    this.c = context;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      const running = [...this.c.running()].filter((ex) => ex.phase === 'running');
      void this.flush(running);
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The job's logger, made on first use (a pino child costs more than the rest of a no-op job). */
  jobLog(ex: Execution): Logger {
    ex.logger ??= this.c.log.child({ job_id: ex.job.id, job_type: ex.job.type, executor: ex.executor.name });
    return ex.logger;
  }

  /** The executor's logger: each line to the daemon's log and buffered for the job's log. */
  loggerFor(ex: Execution): JobLogger {
    const line =
      (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
        if (this.c.log.isLevelEnabled(level)) this.jobLog(ex)[level](fields ?? {}, msg);
        if (level === 'debug') return;
        if (ex.logLines.length >= this.c.maxBufferedLines) {
          this.c.metrics.logLinesDropped.inc();
          return;
        }
        ex.logLines.push({ ts: new Date().toISOString(), level, msg: redactSecrets(msg).slice(0, 16_000) });
      };
    return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
  }

  /** Ships the buffered lines of these executions in one request. */
  async flush(executions: Iterable<Execution>): Promise<void> {
    const entries: AppendLogsBatchRequest['entries'] = [];
    for (const ex of executions) {
      if (ex.logLines.length === 0) continue;
      entries.push({ id: ex.job.id, lease_token: ex.token, lines: ex.logLines });
      ex.logLines = [];
    }
    if (entries.length === 0) return;
    try {
      await this.c.controlPlane.appendLogs(
        { executor: this.c.operatorId, entries },
        { signal: this.c.stopSignal },
      );
    } catch (err) {
      // Logs are best effort; the outcome is not.
      const lines = entries.reduce((n, e) => n + e.lines.length, 0);
      this.c.metrics.logLinesDropped.inc(lines);
      this.c.log.debug({ err: describeError(err), lines }, 'could not ship job log lines');
    }
  }
}
