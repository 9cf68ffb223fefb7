/** Small helpers shared by the benchmarks: statistics, CPU pinning, child processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summary(xs: readonly number[], digits = 0): string {
  const f = (x: number) =>
    x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

/**
 * The benchmarks run the built JavaScript (`npm run build`), as the container image does: Node's
 * type stripping costs ~17 MB of RSS and start-up time that production does not pay.
 */
export const CLI = 'dist/src/cli/main.js';

export const hasTaskset = ['/usr/bin/taskset', '/bin/taskset'].some((p) => existsSync(p));

/** Pins this process to `cpu` when taskset exists (Linux). */
export async function pinSelf(cpu: number): Promise<boolean> {
  if (!hasTaskset) return false;
  const child = spawn('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code === 0)));
}

/** Starts `node args…` pinned to `cpu` (when possible) and resolves once `ready` matches its stdout. */
export function startNode(
  args: string[],
  opts: { cpu?: number; env?: NodeJS.ProcessEnv; ready: RegExp | (() => Promise<boolean>) },
): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const cmd = hasTaskset && opts.cpu !== undefined ? 'taskset' : process.execPath;
  const argv =
    hasTaskset && opts.cpu !== undefined ? ['-c', String(opts.cpu), process.execPath, ...args] : args;
  const child = spawn(cmd, argv, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let done = false;
    const ready = () => {
      if (done) return;
      done = true;
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      resolve({
        child,
        stop: () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    };
    const onData = (d: Buffer) => {
      out += d.toString();
      if (opts.ready instanceof RegExp && opts.ready.test(out)) ready();
    };
    child.stdout?.on('data', onData);
    if (typeof opts.ready === 'function') {
      const check = opts.ready;
      const tick = async (): Promise<void> => {
        if (done || child.exitCode !== null) return;
        if (await check().catch(() => false)) ready();
        else setTimeout(() => void tick(), 20);
      };
      void tick();
    }
    child.once('exit', (code) =>
      reject(new Error(`${args.join(' ')} exited with ${code} before it was ready`)),
    );
  });
}

/** A port free right now on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
