/** This package's version, read once from package.json (two levels up in src/, three in dist/src/). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(import.meta.dirname, up, 'package.json'), 'utf8'));
      if (pkg.name === 'dataplane-operator' && typeof pkg.version === 'string') {
        cached = pkg.version as string;
        break;
      }
    } catch {
      // not there: the next candidate
    }
  }
  return cached;
}

/** The User-Agent the operator's client sends; the control plane reads the version from it. */
export function userAgent(): string {
  return `dataplane-operator/${packageVersion()}`;
}
