/**
 * The supply chain as read from the repository: every workflow action pinned by commit SHA (a tag can
 * be moved to other code), the image's base pinned by digest with its update command written down, and
 * no bench executor in the image. (scripts/image-recipe.sh checks the same of the Dockerfile where it
 * replays the image's build; these are the reader's checks, run with the suite.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const WORKFLOWS = join(ROOT, '.github', 'workflows');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

describe('supply chain', () => {
  it('every action a workflow uses is pinned by a 40-hex commit SHA, its version in a comment', () => {
    const uses = readdirSync(WORKFLOWS)
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap((f) =>
        readFileSync(join(WORKFLOWS, f), 'utf8')
          .split('\n')
          .filter((l) => /^\s*(-\s*)?uses:/.test(l))
          .map((l) => `${f}: ${l.trim()}`),
      );
    expect(uses.length).toBeGreaterThan(5);
    const loose = uses.filter((u) => !/uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$/.test(u));
    expect(loose).toEqual([]);
  });

  it('the base image is pinned by digest, every stage on it, with the update command beside it', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim@sha256:[0-9a-f]{64}$/m);
    const froms = dockerfile.split('\n').filter((l) => l.startsWith('FROM'));
    expect(froms.length).toBe(3);
    for (const f of froms) expect(f).toContain(`${'$'}{NODE_IMAGE}`);
    expect(dockerfile).toContain('docker buildx imagetools inspect node:24-bookworm-slim');
  });

  it('the image copies no bench executor, and says why there is no HEALTHCHECK', () => {
    const copies = dockerfile.split('\n').filter((l) => /^(COPY|ADD)\b/.test(l));
    expect(copies.filter((l) => l.includes('bench'))).toEqual([]);
    expect(dockerfile).not.toMatch(/^HEALTHCHECK/m);
    expect(dockerfile).toMatch(/^# No HEALTHCHECK, on purpose/m);
    expect(dockerfile).toMatch(/DPO_CP_LISTEN=0\.0\.0\.0:8700/);
  });
});
