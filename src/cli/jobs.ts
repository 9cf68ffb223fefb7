/**
 * `dataplane-operator jobs …`: drive any control plane from a terminal or a script.
 * Readable output by default, `--json` for scripts. Exit codes: 0 ok (for `wait`: completed),
 * 1 API or network error, 2 usage error, 3 failed, 4 cancelled, 5 `wait --timeout` passed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { formatIssues } from '../catalogue/index.ts';
import { ApiError, UserClient } from '../client/user-client.ts';
import { isTerminal, type Job, SubmitJobRequest } from '../contract/index.ts';

export const EXIT = { ok: 0, error: 1, usage: 2, failed: 3, cancelled: 4, timeout: 5 } as const;

class UsageError extends Error {}

interface GlobalOpts {
  url: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

function resolveToken(o: GlobalOpts): string {
  if (o.token) return o.token;
  const file = o.tokenFile ?? join(process.env.DPO_DATA_DIR || '.data', 'admin.token');
  if (o.tokenFile || existsSync(file)) {
    try {
      const t = readFileSync(file, 'utf8').trim();
      if (t) return t;
    } catch (e) {
      throw new UsageError(`cannot read token file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  throw new UsageError(
    'no token: pass --token or --token-file, set DPO_API_TOKEN or DPO_API_TOKEN_FILE, or run where .data/admin.token exists (npm run dev writes it)',
  );
}

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => {
      data += c;
    });
    process.stdin.on('end', () => resolve(data));
    process.stdin.on('error', reject);
  });
}

const ago = (iso: string | null) => {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

function progressText(job: Job): string {
  const p = job.progress;
  if (!p) return '';
  const pct = p.fraction === undefined ? '' : `${Math.round(p.fraction * 100)}%`;
  return [pct, p.message ?? ''].filter(Boolean).join(' ');
}

function table(rows: string[][]): string {
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

function describeJob(job: Job): string {
  const lines = [
    `id          ${job.id}`,
    `type        ${job.type}`,
    `state       ${job.state}${job.cancellation_reason ? ` (${job.cancellation_reason})` : ''}`,
    `company     ${job.company_id}    data plane ${job.data_plane_id ?? '(any)'}`,
    `attempt     ${job.attempt}/${job.max_attempts}    executor ${job.executor ?? '-'}`,
    `created     ${job.created_at} (${ago(job.created_at)})`,
    `started     ${job.started_at ?? '-'}`,
    `ended       ${job.ended_at ?? '-'}`,
  ];
  if (job.not_before) lines.push(`retry after ${job.not_before}`);
  if (job.progress) lines.push(`progress    ${progressText(job) || JSON.stringify(job.progress)}`);
  if (job.checkpoint) lines.push(`checkpoint  ${JSON.stringify(job.checkpoint)}`);
  for (const f of job.failures) {
    lines.push(
      `failure     attempt ${f.attempt} ${f.code}${f.retryable ? ' (retryable)' : ''}: ${f.message}`,
    );
  }
  if (job.result !== null) lines.push(`result\n${JSON.stringify(job.result, null, 2)}`);
  return lines.join('\n');
}

function exitFor(job: Job): number {
  return job.state === 'completed'
    ? EXIT.ok
    : job.state === 'failed'
      ? EXIT.failed
      : job.state === 'cancelled'
        ? EXIT.cancelled
        : EXIT.timeout;
}

/** Runs a subcommand with a client, turning errors into messages and exit codes. */
function action<A extends unknown[]>(
  cmd: Command,
  fn: (client: UserClient, g: GlobalOpts, ...args: A) => Promise<number | undefined>,
) {
  return async (...args: A) => {
    const g = cmd.optsWithGlobals() as GlobalOpts;
    let client: UserClient | undefined;
    let code: number = EXIT.ok;
    try {
      client = new UserClient({ url: g.url, token: resolveToken(g) });
      code = (await fn(client, g, ...args)) ?? EXIT.ok;
    } catch (e) {
      code = report(e);
    } finally {
      await client?.close();
    }
    process.exitCode = code;
  };
}

function report(e: unknown): number {
  if (e instanceof UsageError) {
    err(`error: ${e.message}`);
    return EXIT.usage;
  }
  if (e instanceof ApiError) {
    err(`error: ${e.message} (${e.status} ${e.code})`);
    const issues = (e.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues;
    for (const i of issues ?? []) err(`  ${i.path || '(body)'}: ${i.message}`);
    return EXIT.error;
  }
  err(`error: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.error;
}

export function registerJobsCommand(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('Submit, inspect, wait for, cancel and reschedule jobs on a control plane.')
    .option(
      '--url <url>',
      'control plane URL (DPO_CONTROL_PLANE_URL)',
      process.env.DPO_CONTROL_PLANE_URL || 'http://127.0.0.1:8700',
    )
    .option(
      '--token <token>',
      'user-side (admin) token (DPO_API_TOKEN)',
      process.env.DPO_API_TOKEN || undefined,
    )
    .option(
      '--token-file <file>',
      'file holding the user-side token (DPO_API_TOKEN_FILE)',
      process.env.DPO_API_TOKEN_FILE || undefined,
    )
    .option('--json', 'print machine-readable JSON');

  const submit = jobs
    .command('submit [file]')
    .description(
      'Submit a job from a JSON file, or stdin when the file is "-" or absent. The JSON is a submission ' +
        '{type, company_id, data_plane_id?, input, idempotency_key?, max_attempts?}; with --type it may be just the input.',
    )
    .option('--type <type>', 'job type (then the JSON is the input, unless it has an "input" key)')
    .option('--company-id <id>', 'company id', int('--company-id'))
    .option('--data-plane-id <id>', 'target data plane')
    .option('--idempotency-key <key>', 'idempotency key')
    .option('--max-attempts <n>', 'attempts', int('--max-attempts'));
  submit.action(
    action(submit, async (client, g, file: string | undefined) => {
      const o = submit.opts() as {
        type?: string;
        companyId?: number;
        dataPlaneId?: string;
        idempotencyKey?: string;
        maxAttempts?: number;
      };
      const text = file === undefined || file === '-' ? await readStdin() : readFileSync(file, 'utf8');
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`${file ?? 'stdin'} is not valid JSON: ${(e as Error).message}`);
      }
      const obj = (doc ?? {}) as Record<string, unknown>;
      const base =
        o.type && !(typeof obj === 'object' && 'input' in obj) ? { type: o.type, input: doc } : { ...obj };
      const req = {
        ...base,
        ...(o.type ? { type: o.type } : {}),
        ...(o.companyId !== undefined ? { company_id: o.companyId } : {}),
        ...(o.dataPlaneId ? { data_plane_id: o.dataPlaneId } : {}),
        ...(o.idempotencyKey ? { idempotency_key: o.idempotencyKey } : {}),
        ...(o.maxAttempts !== undefined ? { max_attempts: o.maxAttempts } : {}),
      };
      const parsed = SubmitJobRequest.safeParse(req);
      if (!parsed.success) {
        throw new UsageError(
          `not a job submission: ${formatIssues(parsed.error)
            .map((i) => `${i.path || '(root)'}: ${i.message}`)
            .join('; ')}`,
        );
      }
      const { job, created } = await client.submit(parsed.data);
      if (g.json) out(JSON.stringify(job));
      else {
        out(job.id);
        if (!created) err(`(an existing job was returned for idempotency key ${job.idempotency_key})`);
      }
      return EXIT.ok;
    }),
  );

  const list = jobs
    .command('list')
    .description('List jobs, newest first.')
    .option('--state <states>', 'comma-separated states')
    .option('--type <types>', 'comma-separated types')
    .option('--data-plane-id <id>', 'data plane')
    .option('--per-page <n>', 'page size (1–1000)', int('--per-page'), 50)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow cursors to the end');
  list.action(
    action(list, async (client, g) => {
      const o = list.opts() as {
        state?: string;
        type?: string;
        dataPlaneId?: string;
        perPage: number;
        cursor?: string;
        all?: boolean;
      };
      const all: Job[] = [];
      let cursor: string | null | undefined = o.cursor;
      do {
        const page = await client.list({
          state: o.state,
          type: o.type,
          data_plane_id: o.dataPlaneId,
          per_page: o.perPage,
          cursor: cursor ?? undefined,
        });
        all.push(...page.jobs);
        cursor = page.next_cursor;
      } while (o.all && cursor);
      if (g.json) {
        out(JSON.stringify({ jobs: all, next_cursor: cursor ?? null }));
        return EXIT.ok;
      }
      if (all.length === 0) out('no jobs');
      else {
        out(
          table([
            ['ID', 'TYPE', 'STATE', 'ATTEMPT', 'CREATED', 'PROGRESS'],
            ...all.map((j) => [
              j.id,
              j.type,
              j.state,
              `${j.attempt}/${j.max_attempts}`,
              ago(j.created_at),
              progressText(j),
            ]),
          ]),
        );
      }
      if (cursor) err(`more: --cursor ${cursor}`);
      return EXIT.ok;
    }),
  );

  const show = jobs.command('show <id>').description('Show one job.');
  show.action(
    action(show, async (client, g, id: string) => {
      const job = await client.get(id);
      out(g.json ? JSON.stringify(job) : describeJob(job));
      return EXIT.ok;
    }),
  );

  const wait = jobs
    .command('wait <id>')
    .description(
      'Show state and progress until the job ends. Exit 0 completed, 3 failed, 4 cancelled, 5 timed out.',
    )
    .option('--timeout <ms>', 'give up after this long', int('--timeout'));
  wait.action(
    action(wait, async (client, g, id: string) => {
      const { timeout } = wait.opts() as { timeout?: number };
      const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeout;
      const tty = process.stdout.isTTY && !g.json;
      let last = '';
      let job = await client.get(id);
      for (;;) {
        const line =
          `${job.id}  ${job.type}  ${job.state}  attempt ${job.attempt}/${job.max_attempts}  ${progressText(job)}`.trimEnd();
        if (!g.json && line !== last) {
          if (tty) process.stdout.write(`\r\x1b[2K${line}`);
          else out(line);
          last = line;
        }
        if (isTerminal(job.state)) break;
        const left = deadline - Date.now();
        if (left <= 0) break;
        // Short waits so progress shows while the job runs; the server answers at once when it ends.
        job = await client.wait(id, Math.min(left, 1_000));
      }
      if (tty) process.stdout.write('\n');
      if (g.json) out(JSON.stringify(job));
      else if (job.state === 'failed') {
        const f = job.failures.at(-1);
        if (f) err(`failed: ${f.code}: ${f.message}`);
      } else if (job.state === 'completed' && job.result !== null) out(JSON.stringify(job.result, null, 2));
      return exitFor(job);
    }),
  );

  const cancel = jobs.command('cancel <id>').description('Cancel a job.').option('--reason <text>', 'why');
  cancel.action(
    action(cancel, async (client, g, id: string) => {
      const r = await client.cancel(id, (cancel.opts() as { reason?: string }).reason);
      out(g.json ? JSON.stringify(r) : `${r.outcome}: ${r.job.id} is ${r.job.state}`);
      return EXIT.ok;
    }),
  );

  const reschedule = jobs
    .command('reschedule <id>')
    .description('Put a job back on the queue; terminal jobs only with --force.')
    .option('--force', 'reschedule even a completed, failed or cancelled job');
  reschedule.action(
    action(reschedule, async (client, g, id: string) => {
      const r = await client.reschedule(id, (reschedule.opts() as { force?: boolean }).force === true);
      out(g.json ? JSON.stringify(r) : `${r.outcome}: ${r.job.id} is ${r.job.state}`);
      return EXIT.ok;
    }),
  );

  const logs = jobs
    .command('logs <id>')
    .description("Print a job's log lines.")
    .option('--follow', 'keep printing until the job ends');
  logs.action(
    action(logs, async (client, g, id: string) => {
      const { follow } = logs.opts() as { follow?: boolean };
      let after = 0;
      for (;;) {
        const page = await client.logs(id, { after });
        for (const l of page.lines) {
          out(
            g.json
              ? JSON.stringify(l)
              : `${l.ts} ${l.level.toUpperCase().padEnd(5)} [attempt ${l.attempt}] ${l.msg}`,
          );
        }
        if (page.last_seq !== null) after = page.last_seq;
        if (page.lines.length > 0) continue;
        if (!follow) break;
        const job = await client.wait(id, 1_000);
        if (isTerminal(job.state)) {
          const rest = await client.logs(id, { after });
          for (const l of rest.lines)
            out(
              g.json
                ? JSON.stringify(l)
                : `${l.ts} ${l.level.toUpperCase().padEnd(5)} [attempt ${l.attempt}] ${l.msg}`,
            );
          break;
        }
      }
      return EXIT.ok;
    }),
  );
}
