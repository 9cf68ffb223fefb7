/** The jobs CLI prints a job's console link (`jobs show --web`, and a line of `jobs show`). */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
} from '../helpers.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
});

function jobs(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'jobs', ...args], {
    env: {
      PATH: process.env.PATH,
      DPO_CONTROL_PLANE_URL: cp!.url,
      DPO_API_TOKEN: cp!.adminToken,
      DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-console-cli-')),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

it("prints the job's console link, without the token", async () => {
  cp = await startTestControlPlane();
  const job = await clients(cp).submit(TRUNCATE, truncateInput(1));
  const [web, shown] = await Promise.all([jobs(['show', job.id, '--web']), jobs(['show', job.id])]);
  expect(web.code, web.stderr).toBe(0);
  expect(web.stdout).toBe(`${cp.url}/console#/jobs/${job.id}\n`);
  expect(shown.stdout).toMatch(
    new RegExp(`^console +${cp.url.replace(/[.]/g, '\\.')}/console#/jobs/${job.id}$`, 'm'),
  );
  for (const out of [web.stdout, shown.stdout]) expect(out).not.toContain(cp.adminToken);
  // The link opens the page the console serves.
  const page = await fetch(`${cp.url}/console`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<script type="module" src="/console/app.js"');
});
