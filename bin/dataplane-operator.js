#!/usr/bin/env node
// Runs the TypeScript sources directly: Node >= 22.18 strips types natively (Node 24 is the target).
await import('../src/cli/main.ts');
