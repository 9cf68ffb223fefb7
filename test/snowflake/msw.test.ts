/**
 * msw where it can intercept snowflake-sdk (axios over node:http): network failures the loopback
 * fake cannot produce (a connection reset mid-poll). Everything else passes through to the fake.
 */
import { HttpResponse, http, passthrough } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SnowflakeExecutor } from '../../executors/snowflake/executor.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import type { FakeSnowflake } from '../fakes/snowflake.ts';
import { snowflakeEnv, startFake } from './support.ts';

let fake: FakeSnowflake;
let ex: SnowflakeExecutor;
let resets = 0;
const seen: string[] = [];
const server = setupServer(
  http.all('*', ({ request }) => {
    seen.push(new URL(request.url).pathname);
    return passthrough();
  }),
);

beforeAll(async () => {
  fake = await startFake();
  ex = (await snowflakeModule.createExecutor(snowflakeEnv(fake))) as SnowflakeExecutor;
  server.listen({ onUnhandledRequest: 'error' });
});
afterAll(async () => {
  server.close();
  await ex?.close();
  await fake?.close();
});

it('a connection reset while polling is retried (bounded) and the job completes', async () => {
  await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
  await fake.sql('CREATE TABLE company_56.dataset_5 AS SELECT i AS id FROM range(0, 10) t(i)');
  fake.delays.push({ match: /^DELETE/, ms: 200 });
  server.use(
    http.get(`${fake.url}/monitoring/queries/:id`, () => {
      if (resets >= 2) return passthrough();
      resets++;
      return HttpResponse.error();
    }),
  );
  const t = createTestContext();
  const job = testJob('datasets_execute_dml', {
    dataset_id: 5,
    nql: 'n/a',
    compiled_sql: 'DELETE FROM company_56.dataset_5 WHERE id < 4',
    nio_last_modified_at: '2024-01-15T10:30:00Z',
  });
  expect(await ex.execute(job, t.ctx)).toEqual({ type: 'datasets_execute_dml', affected_rows: 4 });
  expect(resets).toBe(2);
  expect(
    t.lines.filter((l) => l.msg.startsWith('reading the query status failed')).length,
  ).toBeGreaterThanOrEqual(1);
  // msw saw the driver's requests (so it does intercept snowflake-sdk), and the fake ran the DML once.
  expect(seen).toContain('/session/v1/login-request');
  expect(fake.executions(/^DELETE/)).toHaveLength(1);
});
