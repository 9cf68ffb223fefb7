/**
 * `dataplane-operator dev` (`npm run dev`): the whole product on a laptop in one command. Starts the
 * bundled control plane, the local DuckDB data plane (with synthetic data) and the daemon; submits
 * the example jobs and shows them run to completion live; then keeps serving until Ctrl-C, which
 * drains the daemon and stops everything. The daemon and the local data plane read the same
 * variables as under `run` (DPO_CONCURRENCY, DPO_LOCAL_THREADS, …), with `dev`'s defaults below them.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import logUpdate from 'log-update';
import pino from 'pino';
import type { z } from 'zod';
import { isTerminal } from '../contract/index.ts';
import { ConfigError, mergeEnv, parseEnvConfig, userPath } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { ControlPlaneEnv, DEV_DATA_PLANE_ID, loadTokens } from './control-plane.ts';
import type { TrackedJob } from './dev-stack.ts';
import { DEV_DAEMON_DEFAULTS, DevEnv } from './env.ts';
import { count, fitWidth, lastFailure, outcomeSummary, progressBar, STATE_MARK, seconds } from './format.ts';
import { DEFAULT_DATA_DIR, DEFAULT_URL } from './jobs/connection.ts';
import { cliCommand } from './paths.ts';

export { DEV_DAEMON_DEFAULTS, DevEnv };

/** The examples/ folder of the package, from the sources (src/cli) or the build (dist/src/cli). */
function examplesDir(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'examples');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return resolve('examples');
  }
}

interface DevOpts {
  envFile?: string[];
  dataDir?: string;
  listen?: string;
  rows?: string;
  examples: string | false;
  exitWhenDone?: boolean;
}

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description(
      'Run the bundled control plane, the local DuckDB data plane and the daemon in one process, submit the example jobs and show them complete; then keep serving.',
    )
    .option('--env-file <file...>', 'read variables from env files (the environment wins)')
    .option('--data-dir <dir>', 'data directory (DPO_DATA_DIR, default .data)')
    .option('--listen <host:port>', 'control plane address (DPO_CP_LISTEN, default 127.0.0.1:8700)')
    .option('--rows <n>', 'rows of the synthetic events dataset (DPO_DEV_ROWS, default 2000000)')
    .option('--examples <dir>', 'folder of example job files', examplesDir())
    .option('--no-examples', 'submit no examples')
    .option('--exit-when-done', 'stop once the examples have ended (exit 1 if one did not complete)')
    .action(async (opts: DevOpts) => {
      process.exitCode = await dev(opts);
    });
}

async function dev(opts: DevOpts): Promise<number> {
  let env: Record<string, string | undefined>;
  let cp: z.infer<typeof ControlPlaneEnv>;
  let d: z.infer<typeof DevEnv>;
  let tokens: ReturnType<typeof loadTokens>;
  try {
    env = { ...DEV_DAEMON_DEFAULTS, DPO_EXECUTOR_ID: `dev-${process.pid}`, ...mergeEnv(opts.envFile ?? []) };
    if (opts.dataDir) env.DPO_DATA_DIR = userPath(opts.dataDir);
    if (opts.listen) env.DPO_CP_LISTEN = opts.listen;
    if (opts.rows) env.DPO_DEV_ROWS = opts.rows;
    cp = parseEnvConfig(ControlPlaneEnv, env);
    d = parseEnvConfig(DevEnv, env);
    tokens = loadTokens(cp);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const operator = tokens.operatorTokens.find((t) => t.data_plane_id === DEV_DATA_PLANE_ID);
  const admin = tokens.adminTokens[0];
  if (!operator || !admin) {
    process.stderr.write(`dev needs an admin token and an operator token for ${DEV_DATA_PLANE_ID}\n`);
    return 2;
  }
  const dataDir = resolve(cp.DPO_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, 'dev.log');
  // The terminal shows the progress display; the logs go to a file.
  const logger = createLogger({
    level: cp.DPO_LOG_LEVEL,
    name: 'dataplane-operator',
    destination: pino.destination({ dest: logFile, mkdir: true, sync: false }),
  });
  const say = (line: string) => process.stdout.write(`${line}\n`);

  // The stack (DuckDB, a native module) loads only when `dev` runs, not with every command.
  const { loadExamples, runExamples, startDevStack } = await import('./dev-stack.ts');
  const started = performance.now();
  say(`dataplane-operator dev: data in ${dataDir} (logs: ${logFile})`);
  say(`preparing the local data plane (${count(d.DPO_DEV_ROWS)} synthetic events)…`);
  let stack: import('./dev-stack.ts').DevStack;
  try {
    stack = await startDevStack({
      env,
      dataDir,
      cpHost: cp.DPO_CP_LISTEN.host,
      cpPort: cp.DPO_CP_LISTEN.port,
      adminToken: admin,
      operatorToken: operator.token,
      rows: d.DPO_DEV_ROWS,
      logger,
    });
  } catch (err) {
    logger.error({ err }, 'dev could not start');
    logger.flush();
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    const message = (err as Error).message;
    // SQLite's word for a control-plane database another process holds.
    const hint = /database is locked/i.test(message)
      ? ` (${dataDir} is in use by another dev or control plane: one per data directory; stop it, or pass --data-dir)`
      : '';
    process.stderr.write(`dataplane-operator dev: ${message}${hint}\n`);
    return 1;
  }
  for (const s of stack.seeded) {
    say(`  dataset ${s.datasetId}: ${count(s.rows)} rows (${s.created ? 'created' : 'reused'})`);
  }
  say(`control plane  ${stack.cp.url}   (admin token: ${join(dataDir, 'admin.token')})`);
  say(`console        ${stack.cp.url}/console   (the admin token signs in; queue metrics at /metrics)`);
  if (stack.ops) say(`metrics        ${stack.ops.url}/metrics   health ${stack.ops.url}/healthz`);
  say(`data plane     ${DEV_DATA_PLANE_ID}: DuckDB at ${stack.executor.path}`);

  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      say('\nstopping: draining the daemon (Ctrl-C again to force)…');
      stop.abort(new Error('stopping'));
    } else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let exit = 0;
  if (opts.examples !== false) {
    const examples = loadExamples(userPath(opts.examples));
    say(`\nsubmitting ${examples.length} example jobs from ${opts.examples}:`);
    const display = createDisplay(started);
    try {
      const jobs = await runExamples(stack.user, examples, display.update, stop.signal);
      display.done();
      const failed = jobs.filter((j) => j.job.state !== 'completed');
      const secs = (t: number | undefined) => (t === undefined ? '–' : seconds(t - started));
      say(
        `all examples completed: ${jobs.length - failed.length} of ${jobs.length} completed in ${secs(performance.now())} ` +
          `(first job completed after ${secs(display.firstCompletedAt())})`,
      );
      for (const f of failed) {
        const why = lastFailure(f.job);
        say(`  ${f.label}: ${f.job.state} ${why ? `(${why})` : ''}`);
      }
      if (failed.length > 0) exit = 1;
    } catch (err) {
      display.done();
      if (!stop.signal.aborted) {
        say(`examples stopped: ${(err as Error).message}`);
        exit = 1;
      }
    }
  }
  if (!opts.exitWhenDone && !stop.signal.aborted) {
    say('\nserving. Submit more jobs from another terminal, for example:');
    // Tell the jobs CLI where this stack is when that is not where it looks by default.
    const vars = [
      stack.cp.url === DEFAULT_URL ? '' : `DPO_CONTROL_PLANE_URL=${stack.cp.url} `,
      dataDir === resolve(DEFAULT_DATA_DIR) ? '' : `DPO_DATA_DIR=${dataDir} `,
    ].join('');
    const cli = cliCommand();
    say(`  ${vars}${cli} jobs submit examples/1-nql-forecast.json`);
    say(`  ${vars}${cli} jobs wait <id>`);
    say('Ctrl-C stops everything.');
    await new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }));
  }
  await stack.stop();
  logger.flush();
  say('stopped.');
  return exit;
}

// ---------------------------------------------------------------------------------------------
// The live display: a table redrawn in place on a terminal, one line per state change otherwise.
// ---------------------------------------------------------------------------------------------

/**
 * The live table's rows for a terminal `columns` wide: every line fits (a wrapped line would break
 * the redraw in place); labels take at most a third of the width.
 */
export function devTable(jobs: readonly TrackedJob[], columns: number): string[] {
  const cols = Math.max(40, columns);
  const width = Math.min(Math.max(...jobs.map((t) => t.label.length), 10), Math.floor(cols / 3));
  return jobs.map((t) => {
    const j = t.job;
    const fraction = j.state === 'completed' ? 1 : j.progress?.fraction;
    const label = fitWidth(t.label, width).padEnd(width);
    return fitWidth(
      `  ${STATE_MARK[j.state] ?? '?'} ${label}  ${j.state.padEnd(10)} ${progressBar(fraction)}  ${outcomeSummary(j)}`,
      cols - 1,
    );
  });
}

function createDisplay(started: number) {
  // A terminal that reports no size (some CI pseudo-terminals) gets the line-per-change output.
  const tty = process.stdout.isTTY === true && (process.stdout.rows ?? 0) > 0;
  const seen = new Map<string, string>();
  let last: readonly TrackedJob[] = [];
  let firstCompleted: number | undefined;
  const render = () => {
    const lines = devTable(last, process.stdout.columns || 80);
    const elapsed = seconds(performance.now() - started);
    const done = last.filter((t) => isTerminal(t.job.state)).length;
    logUpdate(`${lines.join('\n')}\n  ${done}/${last.length} ended · ${elapsed}`);
  };
  const timer = tty ? setInterval(render, 100) : undefined;
  return {
    firstCompletedAt: () => firstCompleted,
    update(jobs: readonly TrackedJob[]) {
      last = jobs;
      if (firstCompleted === undefined && jobs.some((t) => t.job.state === 'completed')) {
        firstCompleted = performance.now();
      }
      if (tty) return;
      for (const t of jobs) {
        if (seen.get(t.job.id) === t.job.state) continue;
        seen.set(t.job.id, t.job.state);
        process.stdout.write(
          `  ${STATE_MARK[t.job.state] ?? '?'} ${t.label}: ${t.job.state} ${outcomeSummary(t.job)}\n`,
        );
      }
    },
    done() {
      if (timer) {
        clearInterval(timer);
        render();
        logUpdate.done();
      }
    },
  };
}
