#!/usr/bin/env node
/**
 * `dataplane-operator`: one binary for the daemon, the bundled control plane and the jobs CLI.
 */
import { Command } from 'commander';
import { registerConfigCommand } from './config.ts';
import { registerControlPlaneCommand } from './control-plane.ts';
import { registerDevCommand } from './dev.ts';
import { registerJobsCommand } from './jobs.ts';
import { registerRunCommand } from './run.ts';

export function buildProgram(): Command {
  const program = new Command('dataplane-operator')
    .description('Pulls jobs from a control-plane queue and runs them on the right engine.')
    .showHelpAfterError('(run with --help for usage)')
    .version(process.env.npm_package_version ?? '0.1.0');
  registerRunCommand(program);
  registerControlPlaneCommand(program);
  registerDevCommand(program);
  registerJobsCommand(program);
  registerConfigCommand(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
