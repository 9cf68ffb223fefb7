#!/usr/bin/env -S node --
// Runs the TypeScript sources directly: Node >= 22.18 strips types natively (Node 24 is the target).
// The `--` matters: without it Node reads `--env-file` among the command's own arguments as its own
// option and exits 9 on a missing file before the CLI can answer (exit 2, with the path it tried).
await import('../src/cli/main.ts');
