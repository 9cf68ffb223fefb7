/**
 * The console in a real headless Chromium (Debian's `chromium`, driven by playwright-core) against the
 * bundled control plane on 127.0.0.1, with a scripted operator speaking the contract over HTTP.
 * Screenshots go to test-artifacts/console/ (gitignored), kept as test artefacts.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  truncateResult,
  waitFor,
} from '../helpers.ts';
import { hasPrerequisite } from '../support/prereqs.ts';
import { queueScenario, threeAttempts } from './scenarios.ts';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const HAS_CHROMIUM = hasPrerequisite(
  'Chromium',
  CHROMIUM,
  '`sudo apt-get install chromium` (or set CHROMIUM_BIN to a Chromium or Chrome binary)',
);
const ARTIFACTS = 'test-artifacts/console';
// Without the background-networking flags Chromium tries to reach Google's hosts at every start.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser: Browser;
let cp: TestControlPlane | undefined;
let logLines: string[] = [];
const pages: Page[] = [];

beforeAll(async () => {
  if (!HAS_CHROMIUM) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const p of pages.splice(0)) await p.context().close();
  await cp?.close();
  cp = undefined;
});

async function setup() {
  logLines = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  cp = await startTestControlPlane({ logger: pino({ level: 'debug' }, sink) });
  return clients(cp);
}

async function newPage(hash = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(8_000);
  const page = await context.newPage();
  pages.push(page);
  page.on('dialog', (d) => {
    void d.accept();
  });
  await page.goto(`${cp!.url}/console${hash}`);
  return page;
}

async function signIn(page: Page, token = cp!.adminToken) {
  await page.fill('#token', token);
  await page.click('#sign-in');
}

// Code run inside the page (page.evaluate / $eval) sees the browser's globals.
declare const document: any;
declare const window: any;
declare function getComputedStyle(el: unknown): any;

/** Waits on a condition in the page (bounded; generous for a loaded 2-core CI machine). */
const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 8_000, interval: 50 });
const rowIds = (page: Page) =>
  page.$$eval('#jobs tr[data-id]', (rows) => rows.map((r) => (r as any).dataset.id));
const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

describe.skipIf(!HAS_CHROMIUM)('the console in Chromium', () => {
  it('refuses a wrong token and an operator token, keeps the admin token in session storage, never in a URL or a log', async () => {
    const c = await setup();
    await c.submit(TRUNCATE, truncateInput(1));
    const page = await newPage();
    await signIn(page, 'not-the-token');
    await poll(() => page.textContent('#login-error')).toContain('refused');
    await signIn(page, cp!.operatorToken);
    await poll(() => page.textContent('#login-error')).toContain('not an admin token');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.$('#jobs')).toBeNull();
    await shot(page, 'refused');

    await signIn(page);
    await page.waitForSelector('#jobs tr[data-id]');
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([cp!.adminToken]);
    await page.reload();
    await page.waitForSelector('#jobs tr[data-id]'); // still signed in: no second prompt
    for (const token of [cp!.adminToken, cp!.operatorToken]) {
      expect(page.url()).not.toContain(token);
      expect(logLines.join('')).not.toContain(token);
    }
    expect(logLines.length).toBeGreaterThan(0);
  });

  it('shows jobs live as they are submitted and as they change, without polling', async () => {
    const c = await setup();
    const page = await newPage('#/jobs?company_id=4242');
    const listRequests: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/jobs') listRequests.push(r.url());
    });
    await signIn(page);
    await poll(() => page.textContent('#count')).toBe('0 jobs');
    await page.waitForSelector('#live.on');

    const a = await c.submit(TRUNCATE, truncateInput(1), { company_id: 4242 });
    await c.submit(TRUNCATE, truncateInput(2), { company_id: 1 }); // filtered out
    const b = await c.submit(TRUNCATE, truncateInput(3), { company_id: 4242 });
    await poll(() => rowIds(page)).toEqual([b.id, a.id]);
    await c.claim(a.id);
    await page.waitForSelector(`#jobs tr[data-id="${a.id}"] [data-state="running"]`);
    expect(await page.textContent(`#jobs tr[data-id="${a.id}"] .executor`)).toBe('test-executor');
    expect(listRequests).toHaveLength(1); // the first page only: the rest came over the event stream
    await shot(page, 'jobs-live');

    await page.click('#nav-operators');
    await page.waitForSelector('#operators tr[data-executor="test-executor"]');
    const cells = await page.$$eval('#operators tr[data-executor="test-executor"] td', (tds) =>
      tds.map((td) => td.textContent),
    );
    expect(cells).toEqual([
      'test-executor',
      cp!.dataPlaneId,
      TRUNCATE,
      '1',
      '1',
      '', // the sparkline
      expect.stringMatching(/ ago$/),
      '—',
      'polling',
    ]);
    // Held jobs against capacity over time, drawn by uPlot from the operator's samples.
    await page.waitForSelector('#operators tr[data-executor="test-executor"] .spark canvas');
    // The view refreshes every 3 s, and each listing samples: a second sample makes a line.
    await poll(async () =>
      Number(await page.getAttribute('#operators tr[data-executor="test-executor"] .spark', 'data-samples')),
    ).toBeGreaterThanOrEqual(2);
    await page.waitForSelector('#operators tr[data-executor="test-executor"] .spark canvas');
    await shot(page, 'operators');
  });

  it('filters by state, type, data plane and company, and finds a job by id', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1), { company_id: 77 });
    const b = await c.submit('datasets_sample', { dataset_id: 2 }, { company_id: 77 });
    const d = await c.submit(TRUNCATE, truncateInput(3), { company_id: 77 });
    await c.submit(TRUNCATE, truncateInput(4), { company_id: 78 });
    await c.user('POST', `/v1/jobs/${d.id}/cancel`, {});
    const page = await newPage('#/jobs?company_id=77');
    await signIn(page);
    await poll(() => rowIds(page)).toEqual([d.id, b.id, a.id]);

    await page.check('#f-state input[value="cancelled"]');
    await poll(() => rowIds(page)).toEqual([d.id]);
    expect(page.url()).toContain('state=cancelled');
    await page.check('#f-state input[value="pending"]');
    await poll(() => rowIds(page)).toEqual([d.id, b.id, a.id]);
    expect(page.url()).toContain('state=pending%2Ccancelled');
    await page.uncheck('#f-state input[value="pending"]');
    await poll(() => rowIds(page)).toEqual([d.id]);
    await page.uncheck('#f-state input[value="cancelled"]');
    await poll(() => rowIds(page)).toEqual([d.id, b.id, a.id]);
    await page.selectOption('#f-type', 'datasets_sample');
    await poll(() => rowIds(page)).toEqual([b.id]);
    await page.selectOption('#f-type', '');
    await page.fill('#f-company_id', '78');
    await page.press('#f-company_id', 'Enter');
    await poll(() => rowIds(page)).toHaveLength(1);
    await page.fill('#f-data_plane_id', cp!.otherDataPlaneId);
    await page.press('#f-data_plane_id', 'Enter');
    await poll(() => page.textContent('#count')).toBe('0 jobs');
    expect(page.url()).toContain(`data_plane_id=${cp!.otherDataPlaneId}`);
    await shot(page, 'filters');

    await page.fill('#f-id', a.id);
    await page.press('#f-id', 'Enter');
    await page.waitForSelector('#timeline');
    expect(page.url()).toContain(`#/jobs/${a.id}`);
    expect(await page.textContent('h2')).toContain(a.id);
  });

  it('pages through the list with a keyset cursor', async () => {
    const c = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 53; i++)
      ids.push((await c.submit(TRUNCATE, truncateInput(i + 1), { company_id: 91 })).id);
    const page = await newPage('#/jobs?company_id=91');
    await signIn(page);
    await poll(() => rowIds(page)).toEqual(ids.slice(3).reverse());
    await page.click('#next-page');
    await poll(() => rowIds(page)).toEqual(ids.slice(0, 3).reverse());
    expect(page.url()).toMatch(/cursor=/);
    expect(await page.$('#next-page')).toBeNull();
    await page.click('#newest');
    await poll(() => rowIds(page)).toHaveLength(50);
  });

  it("shows a job's timeline and its log, live", async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const job = await c.claim(a.id);
    const page = await newPage(`#/jobs/${a.id}`);
    await signIn(page);
    await page.waitForSelector('#timeline tr[data-kind="claimed"]');
    expect(await page.textContent('#timeline tr[data-kind="claimed"]')).toContain('Claimed by test-executor');

    const lease = job.lease!.token;
    const line = (msg: string) => ({ ts: new Date().toISOString(), level: 'info', msg });
    await c.op('POST', `/v1/jobs/${a.id}/logs`, {
      lease_token: lease,
      lines: [line('truncating dataset 1')],
    });
    await poll(() => page.textContent('#log')).toContain('truncating dataset 1');
    await c.op('POST', `/v1/jobs/${a.id}/checkpoint`, {
      lease_token: lease,
      progress: { fraction: 0.5, message: 'half way' },
    });
    await page.waitForSelector('#timeline tr[data-kind="progress"]');
    expect(await page.textContent('#timeline tr[data-kind="progress"]')).toContain('50 % · half way');
    await c.op('POST', `/v1/jobs/${a.id}/logs`, { lease_token: lease, lines: [line('done')] });
    await poll(() => page.textContent('#log')).toContain('done');
    await c.op('POST', `/v1/jobs/${a.id}/complete`, { lease_token: lease, result: truncateResult });
    await page.waitForSelector('#job-state [data-state="completed"]');
    const kinds = await page.$$eval('#timeline tr[data-kind]', (rows) =>
      rows.map((r) => (r as any).dataset.kind),
    );
    expect(kinds).toEqual(['created', 'claimed', 'progress', 'completed']);
    expect(await page.textContent('#data-input')).toContain('dataset_id');
    await shot(page, 'job-timeline-log');
  });

  it('cancels the running job from its page, after a confirmation', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const job = await c.claim(a.id);
    const page = await newPage(`#/jobs/${a.id}`);
    await signIn(page);
    await page.waitForSelector('#job-state [data-state="running"]');
    await page.click('#cancel'); // the dialog is accepted by the page's handler
    await poll(() => page.textContent('.outcome')).toBe('Cancel: cancellation_requested');
    await waitFor(
      async () => (await c.user<Job>('GET', `/v1/jobs/${a.id}`)).body.state === 'pending_cancellation',
      { what: 'cancellation requested' },
    );
    await page.waitForSelector('#job-state [data-state="pending_cancellation"]');

    // The operator hears of it at its next poll, stops the work, and confirms.
    const r = await c.poll({ capacity: 0, held: [{ id: a.id, lease_token: job.lease!.token }] });
    expect(r.body.cancel).toEqual([a.id]);
    await c.op('POST', `/v1/jobs/${a.id}/cancelled`, { lease_token: job.lease!.token });
    await page.waitForSelector('#job-state [data-state="cancelled"]');
    // The notice of the request goes once the job is cancelled.
    await poll(() => page.$('.outcome')).toBeNull();
    expect((await c.user<Job>('GET', `/v1/jobs/${a.id}`)).body).toMatchObject({
      state: 'cancelled',
      cancellation_reason: 'cancelled from the console',
    });
    await shot(page, 'job-cancelled');
  });

  it('draws results the way people read them, and links a follow-up and its cause both ways', async () => {
    const BILLING = 'materialized_views_collect_access_rules_billing_data';
    const c = await (async () => {
      logLines = [];
      cp = await startTestControlPlane({
        followUps: (parent) =>
          parent.type === 'nql-forecast'
            ? [
                {
                  type: BILLING,
                  company_id: parent.company_id,
                  data_plane_id: parent.data_plane_id,
                  input: {
                    dataset_id: 424,
                    nio_last_modified_at: '2026-11-29T00:00:00Z',
                    compiled_query: 'SELECT 1',
                    refresh_job_id: parent.id,
                  },
                },
              ]
            : [],
      });
      return clients(cp);
    })();
    const finish = async (type: string, id: string, result: unknown) => {
      const job = await c.claim(id, type);
      const r = await c.op('POST', `/v1/jobs/${id}/complete`, { lease_token: job.lease!.token, result });
      expect(r.status).toBe(200);
    };
    const nql = await c.submit('nql-forecast', {
      nql: 'SELECT country, COUNT(*) FROM narrative.rosetta GROUP BY country',
      compiled_sql: 'SELECT country, COUNT(*) AS events FROM company_56.dataset_424 GROUP BY country',
    });
    await finish('nql-forecast', nql.id, {
      type: 'Success',
      result: {
        columns: ['country', 'events'],
        rows: [
          ['US', 1234567],
          ['FR', 89],
        ],
      },
    });
    const [billing] = (await c.user<{ jobs: Job[] }>('GET', `/v1/jobs/${nql.id}/follow-ups`)).body.jobs;
    await finish(BILLING, billing!.id, {
      type: BILLING,
      sources: [
        { access_rule_id: 1, rows: 1000, price_per_row: { micro_cents_usd: 50_000 } },
        { access_rule_id: 2, rows: 500, price_per_row: { micro_cents_usd: 100_000 } },
      ],
    });
    const forecast = await c.submit('forecast', {
      as_of: '2026-11-01T00:00:00Z',
      details: {
        type: 'marketplace',
        data_rules: {
          attributes: [
            {
              attribute_id: 1,
              fields: [{ field: 'unique_id.value', filter: null, exported: true }],
              optional: false,
            },
          ],
        },
        pricing: { micro_cents_usd: 100_000 },
      },
      sample_rate_denominator: 128,
    });
    await finish('forecast', forecast.id, {
      type: 'success',
      cost: 123_456_789,
      rows: 1_234_567,
      datasets: [{ dataset_id: 424, rows: 1_234_567, cost: 123_456_789 }],
      estimator: { type: 'sample', rate: 0.0078125 },
      scan_cost: {
        rows: 2_000_000,
        size: 1_572_864,
        sources: [{ rows: 2_000_000, size: 1_572_864, source: { type: 'dataset', dataset_id: 424 } }],
      },
    });

    const page = await newPage(`#/jobs/${nql.id}`);
    await signIn(page);
    await page.waitForSelector('#result-rows');
    const rows = await page.$$eval('#result-rows tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual([
      ['US', '1,234,567'],
      ['FR', '89'],
    ]);
    const heads = await page.$$eval('#result-rows thead th', (ths) => ths.map((th) => th.textContent));
    expect(heads).toEqual(['countrystring', 'eventsnumber']); // the name, then its type below it
    await shot(page, 'result-nql-forecast');
    await page.click(`#follow-ups a[href="#/jobs/${billing!.id}"]`);
    await page.waitForSelector('#result-billing');
    expect(await page.textContent('#billing-total')).toBe('$1.00');
    expect(await page.textContent('#result-billing tbody tr:first-child')).toContain('$0.0005');
    await shot(page, 'result-billing');
    await page.click(`#parent a[href="#/jobs/${nql.id}"]`);
    await page.waitForSelector('#result-rows');

    await page.goto(`${cp!.url}/console#/jobs/${forecast.id}`);
    await page.waitForSelector('#result-forecast');
    const text = await page.textContent('#result-forecast');
    expect(text).toContain('$1.23456789');
    expect(text).toContain('1,234,567');
    expect(text).toContain('2,000,000 rows, 1.5 MiB');
    expect(text).toContain('sampled (rate 0.0078125)');
    await page.waitForSelector('#result-forecast .result-forecast-bars canvas'); // a bar per dataset
    await shot(page, 'result-forecast');
  });

  it("draws a job's attempts as a Gantt: three attempts, one lease lost, one cancelled, with markers and progress ticks", async () => {
    logLines = [];
    let clock = Date.now() - 120_000;
    cp = await startTestControlPlane({ leaseTtlMs: 20_000, now: () => clock });
    const job = await threeAttempts(cp, (ms) => {
      clock += ms;
    });
    const page = await newPage(`#/jobs/${job.id}`);
    await signIn(page);
    await page.waitForSelector('#job-state [data-state="cancelled"]');
    await page.waitForSelector('#gantt canvas');
    expect(await page.getAttribute('#gantt', 'data-bars')).toBe('lost,failed,cancelled');
    expect((await page.getAttribute('#gantt', 'data-marks'))!.split(',').sort()).toEqual([
      'cancel_requested',
      'cancelled',
      'lost',
    ]);
    expect(await page.getAttribute('#gantt', 'data-ticks')).toBe('2');
    expect(await page.$$eval('#gantt .gantt-holder', (els) => els.map((e) => e.textContent))).toEqual([
      'op-alpha',
      'op-bravo',
      'op-charlie',
    ]);
    const legend = await page.textContent('#gantt .u-legend');
    for (const label of [
      '#1 lost',
      '#2 failed',
      '#3 cancelled',
      'lease lost',
      'cancel requested',
      'cancel confirmed',
      'progress',
    ])
      expect(legend).toContain(label);
    // The table stays underneath.
    const kinds = await page.$$eval('#timeline tr[data-kind]', (rows) =>
      rows.map((r) => (r as any).dataset.kind),
    );
    expect(kinds.filter((k) => k === 'claimed')).toHaveLength(3);
    await shot(page, 'job-gantt');
  });

  it('draws the queue over time after 500 jobs, and switches between the last hour, day and week', async () => {
    logLines = [];
    const s = await queueScenario();
    cp = s.cp;
    const page = await newPage('#/jobs');
    const queueRequests: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/console/queue') queueRequests.push(r.url());
    });
    await signIn(page);
    await page.waitForSelector('#queue-charts[data-loaded] #queue-pickup canvas');
    expect(await page.getAttribute('#queue-depth', 'data-series')).toBe(`datasets_sample,${TRUNCATE}`);
    expect(Number(await page.getAttribute('#queue-rate', 'data-completed'))).toBe(s.expected.completed);
    expect(Number(await page.getAttribute('#queue-rate', 'data-failed'))).toBe(s.expected.failed);
    expect(await page.$$eval('#queue-charts .uplot', (els) => els.length)).toBe(3);
    const legend = await page.textContent('#queue-depth .u-legend');
    expect(legend).toContain(`${TRUNCATE} pending`);
    expect(legend).toContain('datasets_sample running');
    await shot(page, 'queue-500-jobs');

    // A job event redraws it (once, throttled), with no timer polling in between.
    const before = queueRequests.length;
    await s.c.submit(TRUNCATE, { dataset_id: 99 });
    await poll(async () => queueRequests.length).toBe(before + 1);

    await page.click('#range-day');
    await poll(() => page.getAttribute('#range-day', 'aria-pressed')).toBe('true');
    expect(page.url()).toContain('range=day');
    await page.waitForSelector('#queue-charts[data-loaded] #queue-pickup canvas');
    expect(queueRequests.at(-1)).toContain('range=day');
    await page.click('#range-week');
    await poll(async () => queueRequests.at(-1)).toContain('range=week');
    await page.waitForSelector('#queue-charts[data-loaded] #queue-pickup canvas');
    await shot(page, 'queue-week');
  });

  it("draws the first rows without waiting for the filters' states and types, and loads the charts' code only after the rows", async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const page = await newPage('#/jobs?state=pending');
    // GET /v1/console/meta is held (a real request to the control plane, answered once released).
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let metaAsked = false;
    await page.route('**/v1/console/meta', async (route) => {
      metaAsked = true;
      await held;
      await route.continue();
    });
    const loadedFiles = () =>
      page.evaluate(() =>
        (globalThis as any).performance
          .getEntriesByType('resource')
          .map((e: { name: string }) => new URL(e.name).pathname),
      );
    await signIn(page);
    await poll(() => rowIds(page)).toEqual([a.id]);
    expect(metaAsked).toBe(true); // asked beside the list, not answered yet
    // The created cell reads as Date's own toLocaleTimeString() would (the formatter is made once).
    const [created, title] = await page.$eval('#jobs tr[data-id] td:last-child', (td: any) => [
      td.textContent,
      td.title,
    ]);
    expect(created).toBe(await page.evaluate((iso) => new Date(iso).toLocaleTimeString(), title));
    expect(await page.$$('#f-state input')).toHaveLength(0);
    expect(await page.$('#filters[data-ready]')).toBeNull();
    // Nothing of the charts has been loaded since the navigation: not charts.js, not uPlot.
    const before = await loadedFiles();
    expect(before).toContain('/console/dom.js');
    expect(before).not.toContain('/console/charts.js');
    expect(before).not.toContain('/console/results.js');
    expect(before).not.toContain('/console/vendor/uPlot.iife.min.js');

    release();
    await page.waitForSelector('#filters[data-ready]');
    expect(await page.$$eval('#f-state input:checked', (els) => els.map((e) => (e as any).value))).toEqual([
      'pending',
    ]);
    expect(await page.$$eval('#f-type option', (els) => els.map((e) => (e as any).value))).toContain(
      TRUNCATE,
    );
    await page.waitForSelector('#queue-charts canvas');
    expect(await loadedFiles()).toEqual(
      expect.arrayContaining(['/console/charts.js', '/console/vendor/uPlot.iife.min.js']),
    );
  });

  it('shows in the filter controls a filter given in the URL', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1), { company_id: 5 });
    await c.user('POST', `/v1/jobs/${a.id}/cancel`, {});
    await c.submit(TRUNCATE, truncateInput(2), { company_id: 5 });
    const page = await newPage(`#/jobs?state=failed,cancelled&type=${TRUNCATE},datasets_sample&company_id=5`);
    await signIn(page);
    await poll(() => rowIds(page)).toEqual([a.id]);
    await page.waitForSelector('#filters[data-ready]'); // the states and types, filled in after the rows
    const checked = await page.$$eval('#f-state input:checked', (els) => els.map((e) => (e as any).value));
    expect(checked).toEqual(['cancelled', 'failed']);
    expect(await page.$eval('#f-type', (el) => (el as any).value)).toBe(`${TRUNCATE},datasets_sample`);
    expect(await page.$eval('#f-company_id', (el) => (el as any).value)).toBe('5');
    await shot(page, 'filters-from-url');
  });

  it('lists each job with its failure, duration, elapsed time while running, and progress', async () => {
    const c = await setup();
    const done = await c.submit(TRUNCATE, truncateInput(1));
    const bad = await c.submit(TRUNCATE, truncateInput(2), { max_attempts: 1 });
    const busy = await c.submit(TRUNCATE, truncateInput(3));
    const d = await c.claim(done.id);
    await c.op('POST', `/v1/jobs/${done.id}/complete`, {
      lease_token: d.lease!.token,
      result: truncateResult,
    });
    const page = await newPage('#/jobs');
    await signIn(page);
    await page.waitForSelector(`#jobs tr[data-id="${busy.id}"]`);
    const b = await c.claim(bad.id);
    await c.op('POST', `/v1/jobs/${bad.id}/fail`, {
      lease_token: b.lease!.token,
      failure: {
        code: 'INVALID_INPUT',
        message: 'dataset 2 has no column named event_timestamp, which the statement needs to partition by',
        retryable: false,
      },
    });
    const row = (id: string, cell: string) => page.textContent(`#jobs tr[data-id="${id}"] ${cell}`);
    await poll(() => row(bad.id, '.failure-cell')).toMatch(/^INVALID_INPUT dataset 2 has no column .*…$/);
    expect(await page.getAttribute(`#jobs tr[data-id="${bad.id}"] .failure`, 'title')).toContain(
      'which the statement needs to partition by',
    );
    expect(await row(done.id, '.duration')).toMatch(/^\d+ ms$|^\d+\.\d s$/);

    const k = await c.claim(busy.id);
    await c.op('POST', `/v1/jobs/${busy.id}/checkpoint`, {
      lease_token: k.lease!.token,
      progress: { fraction: 0.42, message: 'scanning' },
    });
    await poll(() => row(busy.id, '.progress')).toBe('42 %');
    await page.waitForSelector(`#jobs tr[data-id="${busy.id}"] .duration.elapsed`);
    // The elapsed time moves on with the clock.
    const first = await row(busy.id, '.duration');
    await poll(() => row(busy.id, '.duration')).not.toBe(first);
    await shot(page, 'jobs-columns');
    await c.op('POST', `/v1/jobs/${busy.id}/complete`, {
      lease_token: k.lease!.token,
      result: truncateResult,
    });
    await poll(() => page.$(`#jobs tr[data-id="${busy.id}"] .duration.elapsed`)).toBeNull();
    expect(await row(busy.id, '.progress')).toBe('');
  });

  it('draws every result type from the examples: column statistics, a materialized view, DML, inference, training, a classifier, a delivery', async () => {
    const c = await setup();
    const example = (name: string) =>
      JSON.parse(readFileSync(`examples/${name}.json`, 'utf8')) as { type: string; input: unknown };
    const finish = async (type: string, input: unknown, result: unknown) => {
      const job = await c.submit(type, input);
      const claimed = await c.claim(job.id, type);
      const r = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
        lease_token: claimed.lease!.token,
        result,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return job.id;
    };
    const stats = example('1-datasets_calculate_column_stats');
    const statsId = await finish(stats.type, stats.input, {
      type: 'datasets_calculate_column_stats',
      columns: {
        country: {
          null_value_count: 1_204,
          value_count: 2_000_000,
          lower_bound: 'AD',
          upper_bound: 'ZW',
          approx_count_distinct: 187,
          completeness: 0.9994,
        },
        amount: {
          nan_value_count: 0,
          null_value_count: 51_002,
          value_count: 2_000_000,
          lower_bound: 0.01,
          upper_bound: 999.98,
          mean: 187.4,
          standard_deviation: 141.2,
          completeness: 0.9745,
          histogram: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ({
            lower: i * 100,
            upper: (i + 1) * 100,
            count: Math.round(400_000 * Math.exp(-i / 2.5)),
          })),
        },
      },
    });
    const mv = example('1-materialize-view');
    const mvId = await finish(mv.type, mv.input, {
      dataset_id: 2000,
      snapshot_id: '9007199254740993',
      recalculation_id: '6f1c1a8e-2b55-4a8e-9f55-0d0c8d9f4b11',
      nio_last_modified_at: '2026-12-04T10:00:00Z',
      operation: 'append',
      rows_written: 48_211,
      rows_total: 1_048_211,
    });
    const dml = example('2-datasets_execute_dml');
    const dmlId = await finish(dml.type, dml.input, { type: 'datasets_execute_dml', affected_rows: 31_337 });
    const inferenceId = await finish(
      'model_inference_run',
      {
        model: 'anthropic.claude-sonnet',
        messages: [{ role: 'user', text: 'Classify this company by industry: Acme Rockets' }],
        inference_config: { output_format_schema: { type: 'object' }, max_tokens: 256 },
      },
      {
        type: 'model_inference_run',
        structured_output: { industry: 'Aerospace', confidence: 0.91, tags: ['rockets', 'b2b'] },
        usage: { prompt_tokens: 1_843, completion_tokens: 212, total_tokens: 2_055 },
      },
    );
    const trainingId = await finish(
      'model_training_run',
      {
        company_id: 56,
        dataset_id: 424,
        instance_type: 'ml.g5.2xlarge',
        base_model_id: 'distilbert-base-uncased',
        base_model_repository: 'huggingface',
        trained_model_version: '1.0.0',
        trained_model: { name: 'churn', collaborators: { owner_company_id: 56, viewer_company_ids: [] } },
      },
      {
        type: 'model_training_run',
        result: {
          model_id: 'churn-1.0.0',
          status: 'completed',
          metrics: { accuracy: 0.93, f1: 0.88, loss: 0.21 },
        },
      },
    );
    const classifierId = await finish(
      'models_train_classifier',
      {
        config: {
          model_type: 'classification',
          target_column: 'churned',
          feature_columns: ['tenure', 'plan', 'country'],
          training_table: 'company_56.dataset_424',
          output_model_name: 'churn_classifier',
        },
      },
      {
        type: 'models_train_classifier',
        result: {
          model_name: 'churn_classifier',
          accuracy: 0.87,
          f1_score: 0.81,
          feature_importance: { tenure: 0.52, plan: 0.31, country: 0.17 },
        },
      },
    );
    const deliveryId = await finish(
      'models_deliver_model',
      {
        company_id: 56,
        app_id: 3,
        connection_id: 'hf-main',
        profile_id: '0b6c1f52-34a4-4c1e-8d59-6c0a4c7a2f10',
        model_id: 'churn-1.0.0',
        model_name: 'churn',
        model_version: '1.0.0',
      },
      {
        type: 'models_deliver_model',
        result: {
          destination_url: 'https://huggingface.co/acme/churn',
          status: 'completed',
          model_files_uploaded: 7,
          total_size_bytes: 268_435_456,
        },
      },
    );

    const page = await newPage(`#/jobs/${statsId}`);
    await signIn(page);
    await page.waitForSelector('#result-column-stats [data-column="amount"] .histogram canvas');
    await page.waitForSelector('#result-column-stats [data-column="country"] .null-distinct canvas');
    expect(await page.$('#result-column-stats [data-column="country"] .histogram')).toBeNull();
    expect(await page.textContent('#result-column-stats [data-column="amount"]')).toContain('51,002');
    await shot(page, 'result-column-stats');

    const open = async (id: string, selector: string, name: string) => {
      await page.goto(`${cp!.url}/console#/jobs/${id}`);
      await page.waitForSelector(selector);
      await shot(page, name);
      return page.textContent(selector);
    };
    const mvText = await open(mvId, '#result-materialize', 'result-materialize-view');
    expect(await page.textContent('#snapshot-id')).toBe('9007199254740993');
    expect(await page.textContent('#rows-total')).toBe('1,048,211');
    expect(mvText).toContain('48,211');
    expect(await open(dmlId, '#result-dml', 'result-dml')).toContain('31,337');
    const inference = await open(inferenceId, '#inference-usage canvas', 'result-inference');
    void inference;
    expect(await page.textContent('#result-inference')).toContain('Aerospace');
    expect(await page.textContent('#inference-usage h4')).toBe('Usage: 2,055 tokens');
    await open(trainingId, '#result-training .metrics canvas', 'result-training');
    expect(await page.$$eval('#training-metrics tbody tr', (trs) => trs.map((t) => t.textContent))).toEqual([
      'accuracy0.93',
      'f10.88',
      'loss0.21',
    ]);
    await open(classifierId, '#result-training .metrics canvas', 'result-classifier');
    expect(await page.textContent('#result-training')).toContain('churn_classifier');
    await open(deliveryId, '#delivery-link', 'result-delivery');
    expect(await page.getAttribute('#delivery-link', 'href')).toBe('https://huggingface.co/acme/churn');
    expect(await page.getAttribute('#delivery-link', 'rel')).toBe('noopener noreferrer');
    expect(await page.textContent('#result-delivery')).toContain('256.0 MiB');
    // The JSON tree stays under "the whole job".
    expect(await page.textContent('#data-job summary')).toBe('the whole job');
  });

  it('keeps the page to the phone width: tables scroll inside their box, the header stays readable', async () => {
    const c = await setup();
    for (let i = 0; i < 3; i++) await c.submit(TRUNCATE, truncateInput(i + 1));
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    context.setDefaultTimeout(8_000);
    const page = await context.newPage();
    pages.push(page);
    await page.goto(`${cp!.url}/console`);
    await signIn(page);
    await page.waitForSelector('#jobs tr[data-id]');
    // The queue chart starts folded on a phone (the list comes first), and fits when opened.
    expect(await page.$eval('#queue', (el) => el.open)).toBe(false);
    await page.click('#queue summary h3');
    await page.waitForSelector('#queue-charts[data-loaded] #queue-pickup canvas');
    const widest = await page.$$eval('#queue-charts .uplot', (els) =>
      Math.max(...els.map((e) => e.getBoundingClientRect().right)),
    );
    expect(widest).toBeLessThanOrEqual(390);
    const box = await page.$eval('#jobs-table', (t) => {
      const scroller = t.parentElement!;
      return {
        overflow: getComputedStyle(scroller).overflowX,
        inner: scroller.scrollWidth,
        outer: scroller.clientWidth,
        page: document.documentElement.scrollWidth,
        viewport: window.innerWidth,
      };
    });
    expect(box.overflow).toBe('auto');
    expect(box.inner).toBeGreaterThan(box.outer); // the table is wider than its box: it scrolls there
    expect(box.page).toBeLessThanOrEqual(box.viewport); // and the page does not
    // Header cells stay on one line (no word broken per letter) and the nav fits the screen.
    const heads = await page.$$eval('#jobs-table th', (ths) =>
      ths.map((th) => ({ text: th.textContent, h: th.getBoundingClientRect().height })),
    );
    for (const th of heads) expect(th.h, th.text!).toBeLessThan(40);
    const nav = await page.$eval('header', (el) => el.scrollWidth <= el.clientWidth);
    expect(nav).toBe(true);
    await shot(page, 'phone-jobs');
    await page.goto(`${cp!.url}/console#/jobs/${(await c.submit(TRUNCATE, truncateInput(9))).id}`);
    await page.waitForSelector('#timeline');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await shot(page, 'phone-job');
  });

  it('reconnects after the server drops its event stream, and replays what it missed', async () => {
    const c = await setup();
    const page = await newPage('#/jobs');
    const streams: Array<string | undefined> = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/events') streams.push(r.headers()['last-event-id']);
    });
    await signIn(page);
    await poll(() => page.textContent('#count')).toBe('0 jobs');
    await page.waitForSelector('#live.on');
    const a = await c.submit(TRUNCATE, truncateInput(1));
    await poll(() => rowIds(page)).toEqual([a.id]);
    expect(streams).toEqual([undefined]);

    // The server drops every connection (the stream's included) and a job is submitted meanwhile.
    cp!.server.closeAllConnections();
    const b = await c.submit(TRUNCATE, truncateInput(2));
    await page.waitForSelector('#live.off, #live.on');
    await poll(async () => streams.length).toBe(2);
    expect(Number(streams[1])).toBeGreaterThan(0); // it resumes from the last event it saw
    await page.waitForSelector('#live.on');
    await poll(() => rowIds(page)).toEqual([b.id, a.id]);
    const d = await c.submit(TRUNCATE, truncateInput(3));
    await poll(() => rowIds(page)).toEqual([d.id, b.id, a.id]);
    await shot(page, 'reconnected');
  });
});
