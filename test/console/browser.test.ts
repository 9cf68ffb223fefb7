/**
 * The console in a real headless Chromium (Debian's `chromium`, driven by playwright-core) against the
 * bundled control plane on 127.0.0.1, with a scripted operator speaking the contract over HTTP.
 * Screenshots go to test-artifacts/console/ (gitignored), kept as test artefacts.
 */
import { mkdirSync } from 'node:fs';
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

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
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

/** Waits on a condition in the page (bounded; generous for a loaded 2-core CI machine). */
const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 8_000, interval: 50 });
const rowIds = (page: Page) =>
  page.$$eval('#jobs tr[data-id]', (rows) => rows.map((r) => (r as any).dataset.id));
const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

describe('the console in Chromium', () => {
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
      expect.stringMatching(/ ago$/),
      '—',
      'polling',
    ]);
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

    await page.selectOption('#f-state', 'cancelled');
    await poll(() => rowIds(page)).toEqual([d.id]);
    await page.selectOption('#f-state', '');
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
      ['US', '1234567'],
      ['FR', '89'],
    ]);
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
    await shot(page, 'result-forecast');
  });
});
