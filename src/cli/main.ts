#!/usr/bin/env node
/**
 * `dataplane-operator`: one binary for the daemon, the bundled control plane, `dev`, the jobs CLI
 * and `config`. Only the command being run is loaded: the daemon does not carry the terminal
 * display of `dev` or the configuration schema of `config` in its memory (about 12 MB).
 */
import { buildProgram } from './program.ts';

export { EXIT_USAGE } from './program.ts';

await (await buildProgram(process.argv)).parseAsync(process.argv);
