/**
 * The seven `jobs` subcommands (submit, list, show, wait, cancel, reschedule, logs) and what they
 * share: the common options, accepted before or after the subcommand's name, and the wrapper that
 * gives each one a client, aborts it on Ctrl-C and turns what it throws into a message and an exit
 * code. Text for people by default, `--json` for scripts (the contract's objects, one JSON document
 * per line).
 */
import { readFileSync } from 'node:fs';
import { type Command, type CommanderError, InvalidArgumentError } from 'commander';
import { catalogue, JOB_TYPES } from '../../catalogue/index.ts';
import { ApiError, type OperatorsSeen, UserClient } from '../../client/user-client.ts';
import { isTerminal, JOB_STATES, type Job, MAX_WAIT_MS, SubmitJobRequest } from '../../contract/index.ts';
import { parseJsonLossless } from '../../contract/json.ts';
import { userPath } from '../../lib/config.ts';
import { resultFailure } from '../../lib/result.ts';
import { didYouMean } from '../did-you-mean.ts';
import { ago, clip, describeJob, detail, duration, formatLogLine, lastFailure, table } from '../format.ts';
import { parseDuration } from '../paths.ts';
import { type ConnectionOpts, DEFAULT_URL, resolveToken, resolveUrl } from './connection.ts';
import { EXIT, exitFor, Interrupted, reportError, UsageError } from './exit-codes.ts';

/** How often `wait` and `logs --follow` refresh while the job runs (the server answers at once when it ends). */
const REFRESH_MS = 1_000;
const LOG_PAGE = 1_000;

/** Options every `jobs` subcommand takes, before or after its name. */
interface CommonOpts extends ConnectionOpts {
  json?: boolean;
}

interface Ctx {
  client: UserClient;
  json: boolean;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const err = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const json = (v: unknown): void => out(JSON.stringify(v));

// ---------------------------------------------------------------------------------------------
// Arguments and the action wrapper

/** A commander parser for a duration option: `500ms`, `5s`, `2m`, `1h`, `1m30s`, or milliseconds. */
const durationArg =
  (name: string) =>
  (v: string): number => {
    try {
      return parseDuration(v);
    } catch (e) {
      throw new InvalidArgumentError(`${name}: ${(e as Error).message}`);
    }
  };

/** Job ids are UUIDs: anything else is a usage error (exit 2), not a 404 from the server. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function jobId(id: string): string {
  if (!UUID.test(id)) {
    throw new UsageError(`'${id}' is not a job id (a UUID such as 0b5d3f7e-8c1a-4f8e-9a52-3c7d2e1f6a90)`);
  }
  return id.toLowerCase();
}

/** Refuses a job type the catalogue does not have, with the nearest name. */
function knownType(type: string, flag: string): void {
  if ((JOB_TYPES as readonly string[]).includes(type)) return;
  throw new UsageError(
    `${flag}: unknown job type '${type}'${didYouMean(type, JOB_TYPES)} (jobs submit --help lists them)`,
  );
}

/** A commander parser for an integer option in [min, max]. */
const intArg =
  (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `${name} must be an integer${max === Number.MAX_SAFE_INTEGER ? ` ≥ ${min}` : ` from ${min} to ${max}`}`,
      );
    }
    return n;
  };

let pipeGuarded = false;
/** `jobs list | head` closes our stdout early: that is not an error. */
function guardStdout(): void {
  if (pipeGuarded) return;
  pipeGuarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

/** Runs a subcommand with a client: Ctrl-C aborts it, errors become a message and an exit code. */
function action<A extends unknown[]>(cmd: Command, fn: (ctx: Ctx, ...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    guardStdout();
    const o = cmd.optsWithGlobals() as CommonOpts;
    const ac = new AbortController();
    const onSigint = () => ac.abort(new Interrupted('interrupted'));
    process.once('SIGINT', onSigint); // a second Ctrl-C kills at once
    let client: UserClient | undefined;
    let code: number;
    try {
      client = new UserClient({ url: resolveUrl(o), token: resolveToken(o) });
      code = await fn({ client, json: o.json === true, signal: ac.signal }, ...args);
    } catch (e) {
      code = reportError(ac.signal.aborted ? ac.signal.reason : e);
    } finally {
      process.off('SIGINT', onSigint);
      await client?.close();
    }
    process.exitCode = code;
  };
}

/** The options every subcommand takes (commander only sees a parent's options before the first unknown one). */
function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `control plane URL (env DPO_CONTROL_PLANE_URL; default ${DEFAULT_URL})`)
    .option('--token <token>', 'admin token of the control plane (env DPO_API_TOKEN)')
    .option('--token-file <file>', 'file holding the admin token (env DPO_API_TOKEN_FILE)')
    .option('--json', 'print JSON: the contract’s objects, one document per line');
}

/** Commander's own usage errors (unknown option, missing argument, bad value) exit 2; help exits 0. */
function usageExit(e: CommanderError): never {
  process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage);
}

/** The submission a document stands for: with --type, a document without an "input" key is the input. */
function submissionBase(doc: unknown, typeGiven: boolean, source: string): Record<string, unknown> {
  const isObject = typeof doc === 'object' && doc !== null && !Array.isArray(doc);
  if (typeGiven && !(isObject && Object.hasOwn(doc, 'input'))) return { input: doc };
  if (isObject) return { ...(doc as Record<string, unknown>) };
  throw new UsageError(
    `${source} must hold a JSON object (a job submission), or pass --type to submit it as the input`,
  );
}

function readStdin(signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => {
      data += c;
    });
    process.stdin.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(data);
    });
    process.stdin.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Subcommands

const SUBMIT_HELP = `
The JSON is a submission:
  {"type", "company_id", "data_plane_id"?, "input", "idempotency_key"?, "max_attempts"?}
The options replace the file's fields or supply missing ones. With --type, the JSON may instead be
just the job's input: it is taken as the input unless it is an object with an "input" key (then it
is a whole submission whose type --type replaces). The file is read from stdin when it is "-" or
left out.

Prints the new job's id (--json: the job). Submitting an idempotency key again prints the id of the
job it first created (and says so on stderr).

Examples:
  $ dataplane-operator jobs submit job.json
  $ echo '{"dataset_id": 1234}' | dataplane-operator jobs submit --type datasets_truncate_table --company-id 56

Job types:
${JOB_TYPES.filter((t) => !catalogue[t].internal)
  .map((t) => `  ${t.padEnd(32)} ${catalogue[t].summary}`)
  .join('\n')}`;

const JOBS_HELP = `
The token is the first found of --token, --token-file, DPO_API_TOKEN, DPO_API_TOKEN_FILE, then
<data dir>/admin.token (DPO_DATA_DIR, default .data), where the bundled control plane writes the admin token it generates. The options above are
also accepted after the subcommand.

Exit codes: 0 ok (wait: completed), 1 API or network error, 2 usage error,
3 failed, 4 cancelled, 5 wait --timeout passed, 6 wait: completed with a Failure
result (nql-forecast), 130 interrupted.`;

export function registerJobsCommand(program: Command): void {
  const jobs = withCommonOptions(
    program
      .command('jobs')
      .description('Submit, list, show, wait for, cancel and reschedule jobs, and read their logs.')
      .exitOverride(usageExit), // inherited by the subcommands below
  ).addHelpText('after', JOBS_HELP);

  // --- submit ---------------------------------------------------------------------------------
  const submit = withCommonOptions(
    jobs
      .command('submit [file]')
      .description('Submit a job from a JSON file (or stdin) and print its id.')
      .option('--type <type>', 'job type; the JSON may then be just the input (see below)')
      .option('--company-id <id>', 'company the job is for', intArg('--company-id'))
      .option('--data-plane-id <id>', 'data plane that must run it (default: any)')
      .option('--idempotency-key <key>', 'submitting the same key again returns the first job')
      .option('--max-attempts <n>', 'attempts before the job fails', intArg('--max-attempts', 1, 100)),
  ).addHelpText('after', SUBMIT_HELP);
  submit.action(
    action(submit, async (ctx, file: string | undefined) => {
      const o = submit.opts() as {
        type?: string;
        companyId?: number;
        dataPlaneId?: string;
        idempotencyKey?: string;
        maxAttempts?: number;
      };
      const fromStdin = file === undefined || file === '-';
      const source = fromStdin ? 'stdin' : file;
      let text: string;
      if (fromStdin) {
        if (process.stdin.isTTY) {
          throw new UsageError(
            'no file given and stdin is a terminal: pass a JSON file, or pipe the JSON in',
          );
        }
        text = await readStdin(ctx.signal);
      } else {
        try {
          text = readFileSync(userPath(file), 'utf8');
        } catch (e) {
          throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
      }
      if (!text.trim()) throw new UsageError(`${source} is empty: expected a JSON job submission`);
      let doc: unknown;
      try {
        doc = parseJsonLossless(text); // 64-bit integers stay exact (contract)
      } catch (e) {
        throw new UsageError(`${source} is not valid JSON: ${(e as Error).message}`);
      }
      const base = submissionBase(doc, o.type !== undefined, source);
      const req = {
        ...base,
        ...(o.type !== undefined ? { type: o.type } : {}),
        ...(o.companyId !== undefined ? { company_id: o.companyId } : {}),
        ...(o.dataPlaneId !== undefined ? { data_plane_id: o.dataPlaneId } : {}),
        ...(o.idempotencyKey !== undefined ? { idempotency_key: o.idempotencyKey } : {}),
        ...(o.maxAttempts !== undefined ? { max_attempts: o.maxAttempts } : {}),
      };
      if (typeof req.type === 'string')
        knownType(req.type, o.type !== undefined ? '--type' : `${source}: type`);
      const parsed = SubmitJobRequest.safeParse(req);
      if (!parsed.success) {
        const flags: Record<string, string> = {
          type: '--type',
          company_id: '--company-id',
          data_plane_id: '--data-plane-id',
          idempotency_key: '--idempotency-key',
          max_attempts: '--max-attempts',
        };
        const lines = parsed.error.issues.map((i) => {
          const path = i.path.map(String).join('.') || '(submission)';
          const flag = flags[path];
          return `  ${path}: ${i.message}${flag ? ` (in the file, or ${flag})` : ''}`;
        });
        throw new UsageError(`not a valid job submission:\n${lines.join('\n')}`);
      }
      const { job, created } = await ctx.client.submit(parsed.data, ctx.signal);
      if (ctx.json) json(job);
      else out(job.id);
      if (!created) {
        err(`note: idempotency key already used; this is the job it created (now ${job.state})`);
      }
      return EXIT.ok;
    }),
  );

  // --- list -----------------------------------------------------------------------------------
  const list = withCommonOptions(
    jobs
      .command('list')
      .description('List jobs, newest first.')
      .option('--state <states>', `comma-separated states (${JOB_STATES.join(', ')})`)
      .option('--type <types>', 'comma-separated job types')
      .option('--data-plane-id <id>', 'only jobs for this data plane')
      .option('--company-id <id>', 'only jobs of this company', intArg('--company-id'))
      .option(
        '--per-page <n>',
        'jobs per request, 1–1000 (default 50; 1000 with --all)',
        intArg('--per-page', 1, 1000),
      )
      .option('--cursor <cursor>', 'continue where a previous page ended (its next_cursor)')
      .option('--all', 'follow the cursors to the last page'),
  );
  list.action(
    action(list, async (ctx) => {
      const o = list.opts() as {
        state?: string;
        type?: string;
        dataPlaneId?: string;
        companyId?: number;
        perPage?: number;
        cursor?: string;
        all?: boolean;
      };
      for (const t of (o.type ?? '').split(',').filter(Boolean)) knownType(t, '--type');
      if (o.state !== undefined) {
        const bad = o.state.split(',').filter((s) => s && !(JOB_STATES as readonly string[]).includes(s));
        if (bad.length > 0) {
          throw new UsageError(`--state: unknown state ${bad.join(', ')} (states: ${JOB_STATES.join(', ')})`);
        }
      }
      const jobsSeen: Job[] = [];
      let cursor: string | null = o.cursor ?? null;
      do {
        const page = await ctx.client.list(
          {
            state: o.state,
            type: o.type,
            data_plane_id: o.dataPlaneId,
            company_id: o.companyId,
            per_page: o.perPage ?? (o.all ? 1000 : 50),
            cursor: cursor ?? undefined,
          },
          ctx.signal,
        );
        jobsSeen.push(...page.jobs);
        cursor = page.next_cursor;
      } while (o.all && cursor);
      if (ctx.json) {
        json({ jobs: jobsSeen, next_cursor: cursor });
        return EXIT.ok;
      }
      if (jobsSeen.length === 0) err('no jobs');
      else {
        const now = Date.now();
        out(
          table([
            ['ID', 'TYPE', 'STATE', 'ATTEMPT', 'DATA PLANE', 'CREATED', 'DETAIL'],
            ...jobsSeen.map((j) => [
              j.id,
              j.type,
              j.state,
              `${j.attempt}/${j.max_attempts}`,
              j.data_plane_id ?? '(any)',
              ago(j.created_at, now),
              clip(detail(j), 60),
            ]),
          ]),
        );
      }
      if (cursor) err(`more jobs: add --cursor ${cursor} (or --all)`);
      return EXIT.ok;
    }),
  );

  // --- show -----------------------------------------------------------------------------------
  const show = withCommonOptions(
    jobs
      .command('show <id>')
      .description('Show everything about one job (an input longer than a screen is summarised).')
      .option('--full', 'print the whole input, however large')
      .option('--web', "print only the job's page in the control plane's web console"),
  );
  show.action(
    action(show, async (ctx, id: string) => {
      const job = await ctx.client.get(jobId(id), ctx.signal);
      // The console's address of a job; the token is never part of it (the page asks for it).
      const link = `${ctx.client.url}/console#/jobs/${job.id}`;
      if (show.opts().web === true) out(link);
      else if (ctx.json) json(job);
      else out(`${describeJob(job, { full: show.opts().full === true })}\n${'console'.padEnd(13)} ${link}`);
      return EXIT.ok;
    }),
  );

  // --- wait -----------------------------------------------------------------------------------
  const wait = withCommonOptions(
    jobs
      .command('wait <id>')
      .description(
        'Show state and progress until the job ends. Exit 0 completed, 3 failed, 4 cancelled, 5 timed out, 6 completed with a Failure result.',
      )
      .option(
        '--timeout <duration>',
        'give up after this long: 30s, 5m, 1h, 1m30s, or milliseconds (default: never)',
        durationArg('--timeout'),
      )
      .option(
        '--unserved-after <duration>',
        'while the job is pending this long, check that an operator serves its type and data plane (default 10s)',
        durationArg('--unserved-after'),
      ),
  ).addHelpText(
    'after',
    '\nOn a terminal the status line is redrawn in place; otherwise each change is printed on its own line.\n' +
      'With --json, prints the job as it stands at the end.',
  );
  wait.action(
    action(wait, async (ctx, id: string) => {
      const { timeout, unservedAfter = UNSERVED_AFTER_MS } = wait.opts() as {
        timeout?: number;
        unservedAfter?: number;
      };
      const unserved = new UnservedCheck(ctx, unservedAfter);
      const started = Date.now();
      const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : started + timeout;
      const status = new StatusLine(!ctx.json, process.stdout.isTTY === true);
      id = jobId(id);
      let job = await ctx.client.get(id, ctx.signal);
      try {
        for (;;) {
          status.show(job, Date.now() - started);
          if (isTerminal(job.state)) break;
          const note = await unserved.check(job);
          if (note) {
            status.end();
            err(note);
          }
          const left = deadline - Date.now();
          if (left <= 0) break;
          // Long-poll: answers at once when the job ends, else after a moment with the job as it stands.
          job = await ctx.client.wait(id, Math.min(left, REFRESH_MS, MAX_WAIT_MS), ctx.signal);
        }
      } finally {
        status.end();
      }
      const failedResult = job.state === 'completed' ? resultFailure(job.result) : undefined;
      if (ctx.json) json(job);
      else if (job.state === 'completed') {
        const took =
          job.started_at && job.ended_at
            ? ` in ${duration(Date.parse(job.ended_at) - Date.parse(job.started_at))}`
            : '';
        // The job completed (the query ran and answered), but its answer is a failure: say so.
        if (failedResult !== undefined)
          err(`completed${took}, with a Failure result: ${failedResult || '(no message)'}`);
        else err(`completed${took}`);
        if (job.result !== null) out(JSON.stringify(job.result, null, 2));
      } else if (job.state === 'failed') {
        const f = lastFailure(job);
        err(`failed${f ? `: ${f}` : ''}`);
      } else if (job.state === 'cancelled') {
        err(`cancelled${job.cancellation_reason ? `: ${job.cancellation_reason}` : ''}`);
      } else {
        err(`timed out after ${duration(Date.now() - started)}: the job is still ${job.state}`);
      }
      return failedResult !== undefined ? EXIT.resultFailure : exitFor(job.state);
    }),
  );

  // --- cancel ---------------------------------------------------------------------------------
  const cancel = withCommonOptions(
    jobs
      .command('cancel <id>')
      .description('Cancel a job: a pending one at once, a running one once its operator stops the work.')
      .option('--reason <text>', 'why (kept on the job as cancellation_reason)'),
  );
  cancel.action(
    action(cancel, async (ctx, id: string) => {
      const { reason } = cancel.opts() as { reason?: string };
      const r = await ctx.client.cancel(jobId(id), reason, ctx.signal);
      if (ctx.json) json(r);
      else if (r.outcome === 'cancelled') out(`cancelled: job ${r.job.id} is cancelled`);
      else if (r.outcome === 'cancellation_requested') {
        out(`cancellation_requested: job ${r.job.id} is ${r.job.state}; its operator is stopping the work`);
      } else out(`skipped_terminal: job ${r.job.id} had already ended (${r.job.state})`);
      return EXIT.ok;
    }),
  );

  // --- reschedule -----------------------------------------------------------------------------
  const reschedule = withCommonOptions(
    jobs
      .command('reschedule <id>')
      .description('Put a job back on the queue to start afresh (executor, lease and checkpoint cleared).')
      .option('--force', 'also a job that has ended (completed, failed or cancelled)'),
  );
  reschedule.action(
    action(reschedule, async (ctx, id: string) => {
      const { force } = reschedule.opts() as { force?: boolean };
      const r = await ctx.client.reschedule(jobId(id), force === true, ctx.signal);
      if (ctx.json) json(r);
      else if (r.outcome === 'rescheduled') out(`rescheduled: job ${r.job.id} is ${r.job.state}`);
      else out(`skipped_terminal: job ${r.job.id} has ended (${r.job.state}); pass --force to run it again`);
      return EXIT.ok;
    }),
  );

  // --- logs -----------------------------------------------------------------------------------
  const logs = withCommonOptions(
    jobs
      .command('logs <id>')
      .description("Print a job's log lines (--json: one line object per line).")
      .option('--follow', 'keep printing new lines until the job ends'),
  );
  logs.action(
    action(logs, async (ctx, id: string) => {
      const { follow } = logs.opts() as { follow?: boolean };
      id = jobId(id);
      let after = 0;
      const drain = async () => {
        for (;;) {
          const page = await ctx.client.logs(id, { after, limit: LOG_PAGE }, ctx.signal);
          for (const l of page.lines) out(ctx.json ? JSON.stringify(l) : formatLogLine(l));
          if (page.last_seq !== null) after = page.last_seq;
          if (page.lines.length < LOG_PAGE) return;
        }
      };
      await drain();
      if (!follow) return EXIT.ok;
      for (;;) {
        const job = await ctx.client.wait(id, REFRESH_MS, ctx.signal);
        await drain(); // after the wait, so the lines written before the job ended are all there
        if (isTerminal(job.state)) return EXIT.ok;
      }
    }),
  );
}

/** How long a job stays pending before `wait` checks that some operator serves it. */
const UNSERVED_AFTER_MS = 10_000;

/**
 * `wait` on a job nobody serves would wait forever in silence: once the job has been pending for a
 * while, ask the control plane which operators poll (`GET /v1/operators`) and say so, once, when none
 * that is live serves the job's type on its data plane. Checked again every `afterMs` while pending.
 */
class UnservedCheck {
  private pendingSince: number | undefined;
  private lastCheck = 0;
  private said = false;
  private unsupported = false;
  private readonly ctx: Ctx;
  private readonly afterMs: number;

  constructor(ctx: Ctx, afterMs: number) {
    this.ctx = ctx;
    this.afterMs = afterMs;
  }

  async check(job: Job): Promise<string | undefined> {
    if (job.state !== 'pending') {
      this.pendingSince = undefined;
      return undefined;
    }
    const now = Date.now();
    this.pendingSince ??= now;
    if (
      this.said ||
      this.unsupported ||
      now - this.pendingSince < this.afterMs ||
      now - this.lastCheck < this.afterMs
    ) {
      return undefined;
    }
    this.lastCheck = now;
    let seen: OperatorsSeen;
    try {
      seen = await this.ctx.client.operators(this.ctx.signal);
    } catch (e) {
      // An older control plane without the endpoint, or a token that may not read it: stay quiet.
      if (e instanceof ApiError) this.unsupported = true;
      return undefined;
    }
    const live = seen.operators.filter((o) => !o.stale);
    const onPlane = live.filter((o) => job.data_plane_id === null || o.data_plane_id === job.data_plane_id);
    if (onPlane.some((o) => o.job_types.includes(job.type))) return undefined;
    this.said = true;
    const where = job.data_plane_id === null ? 'any data plane' : `data plane ${job.data_plane_id}`;
    const others =
      onPlane.length > 0
        ? `the ${onPlane.length} live operator(s) there serve ${[...new Set(onPlane.flatMap((o) => o.job_types))].sort().join(', ')}`
        : `no live operator polls ${where}${live.length > 0 ? ` (live ones serve ${[...new Set(live.map((o) => o.data_plane_id))].sort().join(', ')})` : ''}`;
    return `note: no operator serves ${job.type} on ${where}: ${others}. The job stays pending until one does (enable an executor for ${job.type} there).`;
  }
}

/** The live status of `wait`: one line redrawn in place on a terminal, a line per change otherwise. */
class StatusLine {
  private last = '';
  private drawn = false;
  private readonly enabled: boolean;
  private readonly tty: boolean;

  constructor(enabled: boolean, tty: boolean) {
    this.enabled = enabled;
    this.tty = tty;
  }

  show(job: Job, elapsedMs: number): void {
    if (!this.enabled) return;
    const what = [job.state, `attempt ${job.attempt}/${job.max_attempts}`, detail(job)]
      .filter(Boolean)
      .join('  ');
    if (this.tty) {
      const width = process.stdout.columns || 80;
      const line = clip(`${job.id}  ${what}  (${duration(elapsedMs)})`, width - 1);
      process.stdout.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (what !== this.last) {
      out(`${job.id}  ${what}`);
    }
    this.last = what;
  }

  end(): void {
    if (this.drawn) process.stdout.write('\n');
    this.drawn = false;
  }
}
