/**
 * Programs some tests need from the system (Helm, Chromium). `npm test` installs nothing: a suite
 * whose program is missing is skipped, with a line naming what to install. CI installs them first
 * (scripts/test-prereqs.sh) and sets DPO_TEST_PREREQS=required, which turns a missing program into
 * a failure instead of a skip, so a wrong path cannot pass CI by skipping.
 */
import { existsSync } from 'node:fs';

/** Whether `path` exists; when it does not, says what to install (or fails, under CI). */
export function hasPrerequisite(what: string, path: string, install: string): boolean {
  if (existsSync(path)) return true;
  const missing = `${what} not found at ${path}. To run its tests: ${install}`;
  if (process.env.DPO_TEST_PREREQS === 'required') throw new Error(`${missing} (DPO_TEST_PREREQS=required)`);
  console.warn(`skipped: ${missing}`);
  return false;
}
