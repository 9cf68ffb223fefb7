import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  call,
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
} from '../helpers.ts';

let cp: TestControlPlane;
let c: ReturnType<typeof clients>;
beforeEach(async () => {
  cp = await startTestControlPlane({ maxBodyBytes: 64 * 1024 });
  c = clients(cp);
});
afterEach(() => cp.close());

describe('authentication and authorisation', () => {
  it('answers 401 with the error body when the token is missing or unknown', async () => {
    const missing = await call(cp.url, 'GET', '/v1/jobs');
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('unauthorized');
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    const wrong = await call(cp.url, 'GET', '/v1/jobs', { token: 'not-a-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).not.toContain('not-a-token');
  });

  it('refuses operator tokens on the user side and the admin token on the operator side', async () => {
    const asOperator = await call(cp.url, 'GET', '/v1/jobs', { token: cp.operatorToken });
    expect(asOperator.status).toBe(403);
    expect(asOperator.body.error.code).toBe('forbidden');
    const adminPoll = await call(cp.url, 'POST', '/v1/operators/poll', {
      token: cp.adminToken,
      body: { executor: 'x', data_plane_id: cp.dataPlaneId, job_types: [TRUNCATE], capacity: 1 },
    });
    expect(adminPoll.status).toBe(403);
  });

  it('refuses an operator token used for another data plane, on polls and on job writes', async () => {
    const poll = await c.poll({ data_plane_id: cp.otherDataPlaneId });
    expect(poll.status).toBe(403);
    expect(poll.body.error.message).toContain(cp.dataPlaneId);

    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const foreign = await call(cp.url, 'POST', `/v1/jobs/${job.id}/complete`, {
      token: cp.otherOperatorToken,
      body: { lease_token: claimed.lease!.token, result: { type: TRUNCATE } },
    });
    expect(foreign.status).toBe(403);
    expect((await c.user('GET', `/v1/jobs/${job.id}`)).body.state).toBe('running');
  });
});

describe('request validation', () => {
  it('answers 400 for malformed JSON without changing the job', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const r = await c.op('POST', `/v1/jobs/${job.id}/complete`, '{"lease_token": ');
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_request');
    expect(r.body.error.message).toMatch(/not valid JSON/);
    const missing = await c.op('POST', `/v1/jobs/${job.id}/fail`, { lease_token: claimed.lease!.token });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.issues[0].path).toBe('failure');
    const after = await c.user('GET', `/v1/jobs/${job.id}`);
    expect(after.body.state).toBe('running');
    expect(after.body.updated_at).toBe(claimed.updated_at);
  });

  it('answers 400 naming the field for a malformed poll and for bad query parameters', async () => {
    const r = await c.poll({ capacity: -1 });
    expect(r.status).toBe(400);
    expect(r.body.error.details.issues.map((i: { path: string }) => i.path)).toContain('capacity');
    const q = await c.user('GET', '/v1/jobs?state=bogus');
    expect(q.status).toBe(400);
    expect(q.body.error.details.issues[0].path).toMatch(/^state/);
    const cursor = await c.user('GET', '/v1/jobs?cursor=%%%');
    expect(cursor.status).toBe(400);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const r = await call(cp.url, 'POST', '/v1/jobs', {
      token: cp.adminToken,
      body: 'type=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(415);
  });

  it('answers 413 with the error body for an oversized request, and the client reads it', async () => {
    const r = await call(cp.url, 'POST', '/v1/jobs', {
      token: cp.adminToken,
      body: { type: TRUNCATE, company_id: 1, input: { dataset_id: 1, pad: 'x'.repeat(100 * 1024) } },
    });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('payload_too_large');
  });

  it('answers 413 to a chunked upload that grows past the limit', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(cp.port, '127.0.0.1', () => {
        socket.write(
          `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${cp.adminToken}\r\n` +
            'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
        );
        const chunk = 'a'.repeat(16 * 1024);
        for (let i = 0; i < 6; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
        socket.write('0\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
        if (data.includes('payload_too_large')) {
          socket.destroy();
          resolve(data);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
  });

  it('answers 404 for unknown routes and ids, 405 for wrong methods', async () => {
    expect((await c.user('GET', '/v1/nothing')).status).toBe(404);
    const unknown = await c.user('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect((await c.user('GET', '/v1/jobs/not-a-uuid')).status).toBe(404);
    const wrongMethod = await call(cp.url, 'DELETE', '/v1/jobs', { token: cp.adminToken });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toContain('GET');
  });
});
