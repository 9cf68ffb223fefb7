/**
 * docs/deploy.md §4 followed to the letter: for each example values file, the Secrets its
 * `kubectl create secret` lines create are exactly what the rendered pod needs (every Secret it mounts
 * or reads, with every required key), and the chart's missing-Secret check, run by Helm with `lookup`
 * against a fake Kubernetes API holding just those Secrets, lets the install through; take one away
 * and it fails naming it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHART, describeHelm, example, HELM, helmTemplate } from '../support/helm.ts';
import { type FakeSecret, startFakeKubeApi } from './fake-kube-api.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'deploy.md'), 'utf8');
const NAMESPACE = 'dataplane';

/** The Secrets (name → keys) the `kubectl create secret` lines under an example's heading create. */
function documentedSecrets(doc: string, file: string): Map<string, Set<string>> {
  const at = doc.indexOf(`**examples/${file}**`);
  if (at < 0) throw new Error(`docs/deploy.md has no section for examples/${file}`);
  const block = /```sh\n([\s\S]*?)```/.exec(doc.slice(at))?.[1] ?? '';
  const out = new Map<string, Set<string>>();
  for (const line of block.split('\n')) {
    const m = /^kubectl\b.*\bcreate secret generic (\S+)(.*)$/.exec(line.trim());
    if (!m) continue;
    const keys = [...(m[2] as string).matchAll(/--from-(?:file|literal)=([^=\s]+)=/g)].map(
      (k) => k[1] as string,
    );
    out.set(m[1] as string, new Set(keys));
  }
  return out;
}

/** Every Secret a rendered Deployment's pod reads, with the keys it cannot start without. */
function referencedSecrets(deployment: any): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (name: string, keys: string[]) => {
    const set = out.get(name) ?? new Set<string>();
    for (const k of keys) set.add(k);
    out.set(name, set);
  };
  const pod = deployment.spec.template.spec;
  const keysOf = (items: any[] | undefined) => (items ?? []).map((i: any) => i.key as string);
  for (const v of pod.volumes ?? []) {
    if (v.secret && !v.secret.optional) add(v.secret.secretName, keysOf(v.secret.items));
    for (const s of v.projected?.sources ?? [])
      if (s.secret && !s.secret.optional) add(s.secret.name, keysOf(s.secret.items));
  }
  for (const c of pod.containers) {
    for (const e of c.env ?? [])
      if (e.valueFrom?.secretKeyRef && !e.valueFrom.secretKeyRef.optional)
        add(e.valueFrom.secretKeyRef.name, [e.valueFrom.secretKeyRef.key]);
    for (const e of c.envFrom ?? []) if (e.secretRef && !e.secretRef.optional) add(e.secretRef.name, []);
  }
  return out;
}

const EXAMPLES = ['aws', 'snowflake', 'local'];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dpo-deploy-doc-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `helm template --dry-run=server` against a fake API holding `secrets`: `lookup` is real there. */
async function renderAgainst(secrets: FakeSecret[], files: string[]) {
  const api = await startFakeKubeApi(secrets, dir);
  try {
    // Asynchronously: the fake answers from this process's event loop while Helm runs.
    const r = await new Promise<{ ok: boolean; error: string }>((resolve) => {
      execFile(
        HELM,
        [
          'template',
          'dpo',
          CHART,
          '--namespace',
          NAMESPACE,
          '--dry-run=server',
          // The fake serves no OpenAPI documents: the objects are validated elsewhere (helm-render).
          '--disable-openapi-validation',
          ...files.flatMap((f) => ['-f', f]),
        ],
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: api.kubeconfig } },
        (err, _stdout, stderr) => resolve({ ok: err === null, error: stderr }),
      );
    });
    return { ...r, requests: [...api.requests] };
  } finally {
    await api.close();
  }
}

describeHelm('docs/deploy.md §4, followed to the letter', () => {
  it.each(EXAMPLES)(
    'lists every Secret and required key examples/values-%s.yaml mounts, and no other',
    (name) => {
      const rendered = helmTemplate([example(name)]);
      expect(rendered.ok, rendered.error).toBe(true);
      const needed = referencedSecrets(rendered.of('Deployment')[0]);
      const documented = documentedSecrets(DOC, `values-${name}.yaml`);
      expect(needed.size).toBeGreaterThan(0);
      expect([...documented.keys()].sort()).toEqual([...needed.keys()].sort());
      for (const [secret, keys] of needed) {
        for (const key of keys) expect(documented.get(secret), `${secret} key ${key}`).toContain(key);
      }
    },
  );

  it.each(EXAMPLES)('values-%s.yaml installs against a cluster holding just those Secrets', async (name) => {
    const secrets = [...documentedSecrets(DOC, `values-${name}.yaml`)].map(([secret, keys]) => ({
      namespace: NAMESPACE,
      name: secret,
      keys: [...keys],
    }));
    const r = await renderAgainst(secrets, [example(name)]);
    expect(r.ok, r.error).toBe(true);
    // Helm did look: the check ran against the fake cluster, not an empty lookup.
    expect(r.requests).toContain(`GET /api/v1/namespaces/${NAMESPACE}/secrets`);
  });

  it('each example file repeats the same kubectl lines in its header', () => {
    for (const name of EXAMPLES) {
      const header = readFileSync(example(name), 'utf8');
      for (const secret of documentedSecrets(DOC, `values-${name}.yaml`).keys())
        expect(header, `values-${name}.yaml`).toMatch(new RegExp(`create secret generic ${secret} `));
    }
  });
});

describeHelm('the missing-Secret check (lookup, where Helm sees a cluster)', () => {
  it('fails the install naming a Secret that does not exist, and a key a Secret lacks', async () => {
    const missing = await renderAgainst(
      [{ namespace: NAMESPACE, name: 'dataplane-operator-token', keys: ['token'] }],
      [example('snowflake')],
    );
    expect(missing.ok).toBe(false);
    expect(missing.error).toMatch(
      /Secret snowflake-operator-key \(secretFiles\[0\]\) does not exist in namespace dataplane/,
    );
    const noKey = await renderAgainst(
      [
        { namespace: NAMESPACE, name: 'dataplane-operator-token', keys: ['token'] },
        { namespace: NAMESPACE, name: 'snowflake-operator-key', keys: ['passphrase'] },
      ],
      [example('snowflake')],
    );
    expect(noKey.ok).toBe(false);
    expect(noKey.error).toMatch(/Secret snowflake-operator-key has no key rsa_key\.p8/);
    expect(noKey.error).not.toMatch(/no key passphrase/);
  });

  it('names a Secret a secretEnv entry reads, and one in another namespace does not count', async () => {
    const values = join(dir, 'password.yaml');
    writeFileSync(values, 'secretEnv:\n  DPO_SNOWFLAKE_PASSWORD: {secretName: sf-password, key: password}\n');
    const r = await renderAgainst(
      [
        { namespace: NAMESPACE, name: 'dataplane-operator-token', keys: ['token'] },
        { namespace: NAMESPACE, name: 'snowflake-operator-key', keys: ['rsa_key.p8'] },
        { namespace: 'elsewhere', name: 'sf-password', keys: ['password'] },
      ],
      [example('snowflake'), values],
    );
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/Secret sf-password \(secretEnv\.DPO_SNOWFLAKE_PASSWORD\) does not exist/);
  });

  it('is skipped by plain helm template, which sees no cluster (documented)', () => {
    const r = helmTemplate([example('snowflake')]);
    expect(r.ok, r.error).toBe(true);
    expect(DOC).toMatch(/`helm\s+template` cannot see a cluster and skips that check/);
  });
});
