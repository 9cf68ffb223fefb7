import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { JOB_TYPES } from '../../src/catalogue/index.ts';
import type {
  Job,
  PollRequest,
  PollResponse,
  ReportRequest,
  ReportResponse,
} from '../../src/contract/index.ts';
import type { ControlPlane } from '../../src/daemon/daemon.ts';
import type { Executor } from '../../src/executor/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

let cp: TestControlPlane | undefined;
const daemons: TestDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  await cp?.close();
  cp = undefined;
});

describe('two daemons against one control plane', () => {
  it('complete 2,000 jobs, each exactly once', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const runs = new Map<string, number>();
    const counting = (): Executor => ({
      name: 'counting',
      jobTypes: [TRUNCATE],
      async execute(job) {
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        return { type: TRUNCATE };
      },
    });
    daemons.push(await startTestDaemon(cp, { executors: [counting()] }));
    daemons.push(await startTestDaemon(cp, { executors: [counting()] }));
    const ids: string[] = [];
    for (let i = 0; i < 2_000; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: 200 }, () => c.submit(TRUNCATE, { dataset_id: 0 }).then((j) => j.id)),
      );
      ids.push(...batch);
    }
    await waitFor(
      async () => {
        const r = await c.user<{ jobs: Job[] }>('GET', '/v1/jobs?state=pending,running&per_page=1');
        return r.body.jobs.length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'every job to end' },
    );
    const completed = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { jobs: Job[]; next_cursor: string | null } = (
        await c.user('GET', `/v1/jobs?state=completed&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`)
      ).body;
      for (const j of page.jobs) completed.add(j.id);
      cursor = page.next_cursor;
    } while (cursor);
    expect(completed.size).toBe(2_000);
    expect(ids.every((id) => completed.has(id))).toBe(true);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(2_000);
    const perDaemon = await Promise.all(
      daemons.map(async (d) => (await d.metrics.claimed.get()).values[0]?.value ?? 0),
    );
    expect(perDaemon.reduce((a, b) => a + b, 0)).toBe(2_000);
  }, 90_000);
});

/** A hand-written fake control plane that hands out jobs a real one would never accept. */
class FakeControlPlane implements ControlPlane {
  readonly reports: ReportRequest['reports'] = [];
  private queue: Job[];
  constructor(jobs: Job[]) {
    this.queue = [...jobs];
  }
  async poll(req: PollRequest, opts: { signal?: AbortSignal } = {}): Promise<PollResponse> {
    const claimed = this.queue.splice(0, req.capacity);
    if (claimed.length === 0 && (req.wait_ms ?? 0) > 0) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(req.wait_ms ?? 0, 50));
        opts.signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve(undefined);
        });
      });
    }
    return { claimed, cancel: [], lost: [], lost_reasons: {}, lease_ttl_ms: 30_000, parked_ms: 0 };
  }
  async report(req: ReportRequest): Promise<ReportResponse> {
    this.reports.push(...req.reports);
    return { results: req.reports.map((r) => ({ id: r.id, status: 'ok' as const })) };
  }
  async checkpoint(): Promise<unknown> {
    return {};
  }
  async appendLogs(): Promise<unknown> {
    return {};
  }
}

function fakeJob(type: string, input: unknown): Job {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    type,
    state: 'running',
    company_id: 1,
    data_plane_id: 'dp-fake',
    request_source: { type: 'api_user' },
    input,
    result: null,
    executor: 'x',
    idempotency_key: null,
    attempt: 1,
    max_attempts: 3,
    lease: { token: randomUUID(), expires_at: now },
    checkpoint: null,
    stale_checkpoints: [],
    progress: null,
    failures: [],
    cancellation_reason: null,
    not_before: null,
    created_at: now,
    updated_at: now,
    started_at: now,
    ended_at: null,
  };
}

describe('malformed input', () => {
  it('fails every type’s malformed input with INVALID_INPUT and the issues, never running it', async () => {
    cp = await startTestControlPlane();
    const bad: unknown[] = [{}, null, 'a string', [1, 2], { dataset_id: -1, compiled_sql: 42 }];
    const jobs = JOB_TYPES.flatMap((type) => bad.map((input) => fakeJob(type, input)));
    const fake = new FakeControlPlane(jobs);
    let executed = 0;
    const everything: Executor = {
      name: 'everything',
      jobTypes: [...JOB_TYPES],
      async execute() {
        executed++;
        return {};
      },
    };
    const d = await startTestDaemon(cp, { executors: [everything], controlPlane: fake, concurrency: 7 });
    daemons.push(d);
    await waitFor(() => fake.reports.length >= jobs.length, { what: 'every malformed job to be reported' });
    expect(fake.reports).toHaveLength(jobs.length);
    expect(executed).toBe(0);
    for (const r of fake.reports) {
      expect(r.outcome).toBe('fail');
      if (r.outcome !== 'fail') continue;
      expect(r.failure).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
      expect((r.failure.details as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
    }
    expect(d.daemon.state).toBe('running');
  });

  it('fails a claimed job of a type no executor here serves, without crashing', async () => {
    cp = await startTestControlPlane();
    const fake = new FakeControlPlane([fakeJob('no-such-type', {})]);
    const d = await startTestDaemon(cp, { controlPlane: fake });
    daemons.push(d);
    await waitFor(() => fake.reports.length === 1);
    expect(fake.reports[0]).toMatchObject({
      outcome: 'fail',
      failure: { code: 'UNKNOWN_JOB_TYPE', retryable: false },
    });
    expect(d.daemon.state).toBe('running');
  });
});
