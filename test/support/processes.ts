/** Child processes of the CLI for tests: spawn, read output, wait for lines and exits. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '../helpers.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const GUARD = join(import.meta.dirname, 'loopback-guard.ts');

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...args], {
    // Every CLI child runs under the loopback guard: a connection beyond 127.0.0.1 throws there.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: `--import ${GUARD}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput: (pattern, timeoutMs = 15_000) =>
      waitFor(() => pattern.test(out) || pattern.test(err), { timeoutMs, what: `output ${pattern}` }).then(
        () => undefined,
      ),
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}
