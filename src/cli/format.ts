/**
 * How jobs read to people, shared by `jobs` and `dev` so that a duration, a failure or a progress
 * bar is written one way: durations, times, progress, failures, one-line summaries, tables, the
 * detail view of `jobs show`. Pure functions of a job and the clock; printing is the caller's.
 */
import { isTerminal, type Job, type StoredLogLine } from '../contract/index.ts';
import { resultFailure } from '../lib/result.ts';

// ---------------------------------------------------------------------------------------------
// Time

/** A duration as people say it: `4.2s`, `42s`, `3m05s`, `2h07m`, `3d4h`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (ms < 10_000) return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/** A count as people read it, one way everywhere: `2,000,000`; a decimal string (64-bit) likewise. */
export function count(n: number | string): string {
  if (typeof n === 'string') return /^-?\d+$/.test(n) ? n.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : n;
  return n.toLocaleString('en-US');
}

/** Seconds with one decimal (`12.3 s`): for counters that tick while someone watches. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** How long ago (or how soon) a timestamp is: `42s ago`, `in 3m05s`; `-` for none. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const ms = now - Date.parse(iso);
  return ms < 0 ? `in ${duration(-ms)}` : `${duration(ms)} ago`;
}

/** A timestamp with how long ago it is. */
export const when = (iso: string | null): string => (iso ? `${iso} (${ago(iso)})` : '-');

// ---------------------------------------------------------------------------------------------
// Text

/** One line, at most `max` characters (an ellipsis marks the cut). */
export function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, Math.max(0, max - 1))}…`;
}

/** A line cut to `max` characters (with an ellipsis), its spacing kept: for aligned tables. */
export function fitWidth(line: string, max: number): string {
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;
}

export const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((l) => by + l)
    .join('\n');

/** Rows as aligned columns; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Jobs

/** A mark per state, for lists people scan. */
export const STATE_MARK: Readonly<Record<string, string>> = {
  pending: '·',
  running: '▶',
  pending_cancellation: '◌',
  completed: '✔',
  failed: '✘',
  cancelled: '⊘',
};

/** The job's last failure as `CODE: message`; empty when it has none. */
export function lastFailure(job: Job): string {
  const f = job.failures.at(-1);
  return f ? `${f.code}: ${f.message}` : '';
}

/** The job's progress as `45% message`; empty when it reported none. */
export function progressText(job: Job): string {
  const p = job.progress;
  if (!p) return '';
  const pct = p.fraction === undefined ? '' : `${Math.round(p.fraction * 100)}%`;
  return [pct, p.message ?? ''].filter(Boolean).join(' ');
}

/** A progress bar `width` cells wide; blank when the fraction is unknown. */
export function progressBar(fraction: number | undefined, width = 16): string {
  if (fraction === undefined) return ' '.repeat(width);
  const n = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(n)}${'░'.repeat(width - n)}`;
}

/** One short phrase on what is going on with the job, for tables and status lines. */
export function detail(job: Job): string {
  switch (job.state) {
    case 'completed': {
      // Its progress is stale once it completed; a Failure result is what matters then.
      const failure = resultFailure(job.result);
      return failure === undefined ? '' : `Failure result: ${failure || '(no message)'}`;
    }
    case 'failed':
      return lastFailure(job);
    case 'cancelled':
      return job.cancellation_reason ? `reason: ${job.cancellation_reason}` : '';
    case 'pending':
      if (job.not_before && Date.parse(job.not_before) > Date.now()) {
        const f = job.failures.at(-1);
        return `retry ${ago(job.not_before)}${f ? ` after ${f.code}` : ''}`;
      }
      return '';
    default:
      return progressText(job);
  }
}

/** What a job came to, in a few words: its result's size when it completed, else why or how far. */
export function outcomeSummary(job: Job): string {
  if (job.state === 'completed') {
    const r = job.result as Record<string, unknown> | null;
    if (!r) return '';
    const failure = resultFailure(r);
    if (failure !== undefined) return `Failure result: ${failure || '(no message)'}`;
    const n = (v: unknown) => (typeof v === 'number' || typeof v === 'string' ? count(v) : '?');
    if (typeof r.affected_rows === 'number' || typeof r.affected_rows === 'string') {
      return `${n(r.affected_rows)} rows affected`;
    }
    if (r.snapshot_id !== undefined) return `snapshot ${r.snapshot_id}, ${n(r.rows_written)} rows`;
    if (typeof r.rows === 'number' && r.type === 'success') return `≈ ${count(r.rows)} rows`;
    if (r.type === 'Success') return `${count((r.result as { rows: unknown[] }).rows.length)} result rows`;
    if (Array.isArray(r.sources)) return `${count(r.sources.length)} access rules`;
    if (typeof r.rows === 'number') return `${count(r.rows)} rows`;
    return String(r.type ?? '');
  }
  if (job.state === 'failed') {
    const f = lastFailure(job);
    return f ? `(${f})` : '';
  }
  return job.progress?.message ?? '';
}

function describeSource(job: Job): string {
  const s = job.request_source;
  if (s.type === 'job') return `job ${s.job_id} (${s.job_type})`;
  return `api user${s.token_name ? ` (${s.token_name})` : ''}`;
}

/** Most lines of input `jobs show` prints, and most characters of each; `--full` prints it all. */
export const INPUT_SHOWN_LINES = 40;
export const INPUT_SHOWN_LINE_CHARS = 240;

/**
 * The JSON of `value` when it fits a screen (`maxLines` lines of at most `maxChars`), else its first
 * lines, each cut at `maxChars`, and a last line saying what was left out.
 */
export function summariseJson(value: unknown, maxLines: number, maxChars = INPUT_SHOWN_LINE_CHARS): string {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  const lines = text.split('\n');
  if (lines.length <= maxLines && lines.every((l) => l.length <= maxChars)) return text;
  const shown = lines
    .slice(0, maxLines)
    .map((l) =>
      l.length <= maxChars ? l : `${l.slice(0, maxChars)}… (${l.length - maxChars} more characters)`,
    );
  const kib = (Buffer.byteLength(text) / 1024).toFixed(1);
  const more = lines.length > maxLines ? `${lines.length - maxLines} more lines, ` : '';
  return `${shown.join('\n')}\n… (${more}${kib} KiB in all; --full prints it all)`;
}

/** `jobs show`: everything a person asks about a job. The lease token is left out (it is a credential). */
export function describeJob(job: Job, options: { full?: boolean } = {}): string {
  const rows: Array<[string, string]> = [
    ['id', job.id],
    ['type', job.type],
    ['state', job.state],
    ['attempt', `${job.attempt}/${job.max_attempts}`],
    ['executor', job.executor ?? '-'],
    ['company', String(job.company_id)],
    ['data plane', job.data_plane_id ?? '(any)'],
    ['source', describeSource(job)],
  ];
  if (job.idempotency_key) rows.push(['idem. key', job.idempotency_key]);
  rows.push(['created', when(job.created_at)]);
  rows.push(['started', when(job.started_at)]);
  rows.push(['ended', when(job.ended_at)]);
  rows.push(['updated', when(job.updated_at)]);
  if (job.started_at) {
    const end = job.ended_at ? Date.parse(job.ended_at) : Date.now();
    rows.push(['run time', `${duration(end - Date.parse(job.started_at))}${job.ended_at ? '' : ' so far'}`]);
  }
  if (job.lease) rows.push(['lease', `expires ${when(job.lease.expires_at)}`]);
  if (job.not_before) rows.push(['retry at', when(job.not_before)]);
  // A job that has ended has no progress worth showing: its last report is stale.
  if (job.progress && !isTerminal(job.state)) {
    rows.push(['progress', progressText(job) || JSON.stringify(job.progress)]);
  }
  const failedResult = job.state === 'completed' ? resultFailure(job.result) : undefined;
  if (failedResult !== undefined) rows.push(['outcome', `Failure result: ${failedResult || '(no message)'}`]);
  if (job.checkpoint) rows.push(['checkpoint', JSON.stringify(job.checkpoint)]);
  if (job.cancellation_reason) rows.push(['cancel reason', job.cancellation_reason]);
  const lines = rows.map(([k, v]) => `${k.padEnd(13)} ${v}`);
  if (job.failures.length > 0) {
    lines.push(`${'failures'.padEnd(13)} ${job.failures.length}`);
    for (const f of job.failures) {
      lines.push(
        `  attempt ${f.attempt}  ${f.timestamp}  ${f.code}${f.retryable ? ' (retryable)' : ''}` +
          `${f.executor ? `  on ${f.executor}` : ''}`,
      );
      lines.push(indent(f.message, '    '));
      if (f.details !== null && f.details !== undefined) {
        lines.push(indent(JSON.stringify(f.details, null, 2), '    '));
      }
    }
  }
  lines.push(
    'input',
    indent(
      options.full
        ? (JSON.stringify(job.input, null, 2) ?? 'null')
        : summariseJson(job.input, INPUT_SHOWN_LINES),
    ),
  );
  if (job.result !== null) lines.push('result', indent(JSON.stringify(job.result, null, 2)));
  return lines.join('\n');
}

/** One line of a job's log: time, level, attempt, message. */
export function formatLogLine(l: StoredLogLine): string {
  return `${l.ts}  ${l.level.toUpperCase().padEnd(5)}  [attempt ${l.attempt}]  ${l.msg}`;
}
