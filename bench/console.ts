/**
 * The console's first paint over 50,000 jobs, in headless Chromium (Debian's /usr/bin/chromium, or
 * CHROMIUM_BIN) driven by playwright-core, against the bundled control plane on 127.0.0.1 (in this
 * process, from the sources: the built `dist/` has no static files).
 *
 * 50,000 jobs submitted over the last week (a driven clock), 30,000 of them claimed and 25,000
 * completed, so the queue chart has a week of changes to reduce (about 110,000 event log entries).
 * Measured per page load, from navigation start: first contentful paint, the jobs table drawn (50
 * rows in the document, seen by a MutationObserver: the same measure for any version of the page),
 * and the three queue charts drawn (the first load pays the SQL; later ones share its answer, as
 * pages do within the cache window), for the last hour and for the last week; and the time of the
 * queue series' SQL per range. One warm-up load, then five; median (range). The page is signed in
 * already (the token in session storage).
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { queueSeries } from '../src/control-plane/console/charts.ts';
import { startControlPlane } from '../src/control-plane/server.ts';
import { summary } from './lib.ts';

const JOBS = Number(process.env.BENCH_CONSOLE_JOBS ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const TYPES = ['datasets_truncate_table', 'datasets_sample'];

export async function benchConsole(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    process.stdout.write(`\nconsole: skipped (no Chromium at ${CHROMIUM}; set CHROMIUM_BIN)\n`);
    return;
  }
  const week = 7 * 86_400_000;
  const t0 = Date.now() - week;
  let clock = t0;
  const admin = 'bench-admin-token';
  const cp = await startControlPlane({
    dbPath: ':memory:',
    port: 0,
    adminTokens: [admin],
    operatorTokens: [{ token: 'bench-operator-token', data_plane_id: 'dp-bench' }],
    leaseTtlMs: 30 * 86_400_000,
    now: () => clock,
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const fillStart = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      clock = t0 + Math.floor((i / JOBS) * (week - 3_600_000));
      const type = TYPES[i % TYPES.length]!;
      ids.push(
        cp.store.submit(
          {
            type,
            company_id: 1 + (i % 50),
            data_plane_id: 'dp-bench',
            input: { dataset_id: 1 + (i % 1000) },
          },
          { type: 'api_user', token_name: 'bench' },
        ).job.id,
      );
      // Every 10th submission, the operator claims 6 and completes 5 of what waits.
      if (i % 10 === 9) {
        clock += 30_000;
        const { claimed } = cp.store.poll({
          executor: 'bench-op',
          dataPlaneId: 'dp-bench',
          jobTypes: TYPES,
          capacity: 6,
          held: [],
        });
        clock += 60_000;
        for (const j of claimed.slice(0, 5))
          cp.store.complete(j.id, j.lease!.token, 'dp-bench', { type: j.type });
      }
    }
    clock = Date.now();
    const events = cp.store.lastEventSeq();
    process.stdout.write(
      `\nconsole: ${JOBS.toLocaleString('en-US')} jobs, ${events.toLocaleString('en-US')} events (filled in ${((performance.now() - fillStart) / 1000).toFixed(1)} s)\n`,
    );

    // The SQL itself (the endpoint shares an answer for a while, so it is timed here directly).
    for (const range of ['hour', 'day', 'week'] as const) {
      const ms: number[] = [];
      for (let i = 0; i <= RUNS; i++) {
        const start = performance.now();
        queueSeries(cp.store, range);
        if (i > 0) ms.push(performance.now() - start);
      }
      process.stdout.write(`  queue series (SQL), ${range}: ${summary(ms, 1)} ms\n`);
    }

    const measure = async (hash: string) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.addInitScript((t) => {
        sessionStorage.setItem('dpo.console.token', t);
        // When the 50th row of the jobs table is in the document (the same measure for any version
        // of the page: it reads the DOM, not the page's own marks).
        const g = globalThis as any;
        new g.MutationObserver((_: unknown, obs: any) => {
          if (g.document.querySelectorAll('#jobs tr[data-id]').length >= 50) {
            g.__rowsAt = performance.now();
            obs.disconnect();
          }
        }).observe(g.document, { childList: true, subtree: true });
      }, admin);
      const page = await context.newPage();
      await page.goto(`${cp.url}/console${hash}`);
      await page.waitForFunction(
        () =>
          (globalThis as any).__rowsAt !== undefined &&
          performance.getEntriesByName('first-contentful-paint').length > 0 &&
          ((globalThis as any).document.querySelector('#queue') === null ||
            performance.getEntriesByName('dpo:queue-drawn').length > 0),
        undefined,
        { timeout: 60_000 },
      );
      const t = await page.evaluate(() => ({
        fcp: performance.getEntriesByName('first-contentful-paint')[0]!.startTime,
        jobs: (globalThis as any).__rowsAt as number,
        queue: performance.getEntriesByName('dpo:queue-drawn')[0]?.startTime ?? Number.NaN,
      }));
      await context.close();
      return t;
    };
    for (const hash of ['#/jobs', '#/jobs?range=week']) {
      const runs: Array<{ fcp: number; jobs: number; queue: number }> = [];
      for (let i = 0; i <= RUNS; i++) {
        const t = await measure(hash);
        if (i > 0) runs.push(t);
      }
      process.stdout.write(
        `  page ${hash}: first contentful paint ${summary(runs.map((r) => r.fcp))} ms; jobs table drawn ${summary(runs.map((r) => r.jobs))} ms (bar: < 300); queue charts drawn ${summary(runs.map((r) => r.queue))} ms\n`,
      );
    }
  } finally {
    await browser.close();
    await cp.close();
  }
}
