/**
 * The CLI in process: `dataplane-operator <args>` through `buildProgram` (src/cli/program.ts), as
 * the binary runs it, without starting a `node` per call. Each call sees its own environment, stdin,
 * stdout, stderr, exit code and `process.exit`, also when several run at once: an AsyncLocalStorage
 * gives the code of each call its own view of the global `process`. What only the real process can show (the bin, signals, a pipe closed early)
 * stays with spawned tests (test/support/processes.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

interface Call {
  env: Record<string, string>;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  out: string;
  err: string;
  code: number | undefined;
}

/** `process.exit` inside a call: ends that call's command with the code. */
class Exit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

const calls = new AsyncLocalStorage<Call>();
let installed = false;

/**
 * Inside a call, the global `process` is a view of the real one with the call's env, stdin, stdout,
 * stderr, exitCode and exit; everywhere else (vitest, the servers under test) it is the real one.
 */
function install(): void {
  if (installed) return;
  installed = true;
  const real = process;
  const views = new WeakMap<Call, NodeJS.Process>();
  const view = (call: Call): NodeJS.Process =>
    new Proxy(real, {
      get(target, key) {
        switch (key) {
          case 'env':
            return call.env;
          case 'stdin':
            return call.stdin;
          case 'stdout':
            return call.stdout;
          case 'stderr':
            return call.stderr;
          case 'exitCode':
            return call.code;
          case 'exit':
            return (code?: number | string | null) => {
              throw new Exit(Number(code ?? call.code ?? 0));
            };
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
      set(target, key, value) {
        if (key === 'exitCode') call.code = value === undefined ? undefined : Number(value);
        else Reflect.set(target, key, value);
        return true;
      },
    });
  Object.defineProperty(globalThis, 'process', {
    configurable: true,
    enumerable: false,
    get: () => {
      const call = calls.getStore();
      if (!call) return real;
      const v = views.get(call) ?? view(call);
      views.set(call, v);
      return v;
    },
  });
}

function sink(call: Call, key: 'out' | 'err'): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      call[key] += chunk.toString();
      done();
    },
  });
}

/**
 * Starts `dataplane-operator <args>` in process with exactly `env` as its environment (plus PATH and
 * HOME) and `stdin` as its standard input.
 */
export function startCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; stdin?: string } = {},
): RunningCli {
  install();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env })) {
    if (v !== undefined) env[k] = v;
  }
  const call = { env, stdin: Readable.from(opts.stdin ? [opts.stdin] : []), out: '', err: '' } as Call;
  call.stdout = sink(call, 'out');
  call.stderr = sink(call, 'err');
  const done = calls.run(call, async (): Promise<CliResult> => {
    let code: number;
    try {
      const argv = ['node', 'dataplane-operator', ...args];
      const program = await buildProgram(argv);
      // commander imports `node:process` itself: give every command the call's streams.
      const output = {
        writeOut: (t: string) => void call.stdout.write(t),
        writeErr: (t: string) => void call.stderr.write(t),
      };
      const configure = (cmd: Command): void => {
        cmd.configureOutput(output);
        for (const sub of cmd.commands) configure(sub);
      };
      configure(program);
      await program.parseAsync(argv);
      code = call.code ?? 0;
    } catch (e) {
      if (!(e instanceof Exit)) {
        call.err += `${(e as Error).stack ?? e}\n`;
        code = 1;
      } else code = e.code;
    }
    return { code, stdout: call.out, stderr: call.err };
  });
  return { stdout: () => call.out, stderr: () => call.err, done };
}

/** Runs `dataplane-operator <args>` in process to its end. */
export const runCliInProcess = (
  args: string[],
  opts?: { env?: Record<string, string | undefined>; stdin?: string },
): Promise<CliResult> => startCli(args, opts).done;
