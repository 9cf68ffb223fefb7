/**
 * The chart as Helm renders it, for tests (Helm 4 from scripts/get-helm.sh, which CI runs first, or
 * HELM_BIN; without either the suites using {@link describeHelm} are skipped): `helm template` with values files, `--set`s and the API versions a cluster
 * would report, parsed into objects.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { hasPrerequisite } from './prereqs.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const CHART = join(ROOT, 'helm', 'dataplane-operator');
export const HELM = process.env.HELM_BIN ?? join(ROOT, '.cache', 'helm', 'helm');
export const example = (name: string) => join(CHART, 'examples', `values-${name}.yaml`);

export interface Rendered {
  ok: boolean;
  error: string;
  objects: any[];
  of(kind: string): any[];
}

/** `describe`, skipped with a message naming what to install when there is no Helm. */
export const describeHelm = describe.skipIf(
  !hasPrerequisite('helm', HELM, '`bash scripts/get-helm.sh` (or set HELM_BIN to a Helm >= 3.14)'),
);

export function helmTemplate(files: string[], sets: string[] = [], apiVersions: string[] = []): Rendered {
  const r = spawnSync(
    HELM,
    [
      'template',
      'dpo',
      CHART,
      '--namespace',
      'jobs',
      ...files.flatMap((f) => ['-f', f]),
      ...sets.flatMap((s) => ['--set', s]),
      ...apiVersions.flatMap((a) => ['--api-versions', a]),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const objects =
    r.status === 0
      ? parseAllDocuments(r.stdout)
          .map((d) => d.toJS())
          .filter(Boolean)
      : [];
  return {
    ok: r.status === 0,
    error: r.stderr,
    objects,
    of: (kind) => objects.filter((o) => o.kind === kind),
  };
}
