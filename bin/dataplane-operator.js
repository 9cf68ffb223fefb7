#!/usr/bin/env -S node --
// Runs the TypeScript sources directly: Node >= 22.18 strips types natively (Node 24 is the target).
// The `--` matters: without it Node reads `--env-file` among the command's own arguments as its own
// option and exits 9 on a missing file before the CLI can answer (exit 2, with the path it tried).
//
// An older Node cannot load a .ts file and would print a raw ERR_UNKNOWN_FILE_EXTENSION stack: say
// which Node this needs instead (package.json "engines"), before importing anything.
const MIN = [22, 18];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN[0] || (major === MIN[0] && minor < MIN[1])) {
  process.stderr.write(
    `dataplane-operator needs Node >= ${MIN.join('.')} (24 recommended): it runs its TypeScript sources, which ` +
      `older Node cannot load. This is Node ${process.versions.node} (${process.execPath}).\n` +
      'Use Node 24 (e.g. `npm run cli -- …` in this checkout uses the Node 24 it installs), or the container image.\n',
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
