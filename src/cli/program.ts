/**
 * The `dataplane-operator` program (main.ts parses the process's arguments with it; tests run it in
 * process). Only the command being run is loaded.
 */
import { Command } from 'commander';

type Register = (program: Command) => void;

/** The exit code of a usage error, in every command. */
export const EXIT_USAGE = 2;

const COMMANDS: Record<string, () => Promise<Register>> = {
  run: async () => (await import('./run.ts')).registerRunCommand,
  'control-plane': async () => (await import('./control-plane.ts')).registerControlPlaneCommand,
  dev: async () => (await import('./dev.ts')).registerDevCommand,
  jobs: async () => (await import('./jobs.ts')).registerJobsCommand,
  config: async () => (await import('./config.ts')).registerConfigCommand,
  emr: async () => (await import('./emr.ts')).registerEmrCommand,
};

export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('dataplane-operator')
    .description('Pulls jobs from a control-plane queue and runs them on the right engine.')
    .showHelpAfterError('(run with --help for usage)')
    .version(process.env.npm_package_version ?? '0.1.0')
    // Usage errors (an unknown command or option, a missing argument) exit 2 in every command, as in
    // `jobs`; 1 is a crash. Help and --version exit 0. Commands registered below inherit this.
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : EXIT_USAGE));
  // The first word that is not an option names the command; without one (help, a typo) all load.
  const sub = argv.slice(2).find((a) => !a.startsWith('-'));
  const names = sub !== undefined && sub in COMMANDS ? [sub] : Object.keys(COMMANDS);
  for (const name of names) (await (COMMANDS[name] as () => Promise<Register>)())(program);
  // Long-running commands refuse an unreadable env file and unknown DPO_* variables (exit 2) before
  // they start: a typo must not run the daemon on a default.
  program.hook('preAction', async (_program, action) => {
    // Only those load the variables' schema (the jobs CLI starts without it).
    if (!['run', 'dev', 'control-plane'].includes(action.name())) return;
    const { refuseUnknownVariables } = await import('./strict-env.ts');
    try {
      refuseUnknownVariables((action.opts() as { envFile?: string[] }).envFile ?? []);
    } catch (err) {
      if (!(err instanceof Error && err.name === 'ConfigError')) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
  });
  return program;
}
