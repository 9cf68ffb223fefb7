/**
 * A Kubernetes API server on 127.0.0.1 that knows Secrets and nothing else: enough for Helm's `lookup`
 * under `helm template --dry-run=server`, so the chart's missing-Secret check runs where it would
 * against a cluster. It answers what Helm 4.1 asked for, in the shapes of the Kubernetes API reference
 * (https://kubernetes.io/docs/reference/using-api/api-concepts/ and the core/v1 reference):
 *
 * | request (as Helm sends it) | answer |
 * |---|---|
 * | `GET /version` | `version.Info` (`major`, `minor`, `gitVersion`): the reachability check |
 * | `GET /api` (Accept: aggregated discovery, then plain JSON) | `APIVersions` `{versions: ["v1"]}`: plain JSON is allowed, clients fall back to it |
 * | `GET /apis` | `APIGroupList`: apps/v1, policy/v1, networking.k8s.io/v1 |
 * | `GET /api/v1`, `GET /apis/{group}/{version}` | `APIResourceList` of the kinds the chart renders (Helm maps each object, and `lookup "v1" "Secret"`, to a resource through them) |
 * | `GET /api/v1/namespaces/{ns}/secrets` | `SecretList`; `data` values base64, as the API serves them |
 * | anything else (a GET of an object the chart would create) | 404 with a `Status` body: nothing exists yet |
 */

import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** The kinds the chart renders, by group/version: [resource, kind]. */
const RESOURCES: Record<string, Array<[string, string]>> = {
  v1: [
    ['secrets', 'Secret'],
    ['configmaps', 'ConfigMap'],
    ['services', 'Service'],
    ['serviceaccounts', 'ServiceAccount'],
    ['pods', 'Pod'],
  ],
  'apps/v1': [['deployments', 'Deployment']],
  'policy/v1': [['poddisruptionbudgets', 'PodDisruptionBudget']],
  'networking.k8s.io/v1': [['networkpolicies', 'NetworkPolicy']],
};
const GROUPS = Object.fromEntries(Object.entries(RESOURCES).filter(([gv]) => gv.includes('/')));

export interface FakeSecret {
  namespace: string;
  name: string;
  keys: string[];
}

export interface FakeKubeApi {
  /** A kubeconfig file pointing at this server (for KUBECONFIG). */
  kubeconfig: string;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  close(): Promise<void>;
}

export async function startFakeKubeApi(secrets: FakeSecret[], dir: string): Promise<FakeKubeApi> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    requests.push(`${req.method} ${path}`);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/version')
      return send(200, { major: '1', minor: '35', gitVersion: 'v1.35.0', platform: 'linux/amd64' });
    if (path === '/api')
      return send(200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      });
    if (path === '/apis')
      return send(200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: Object.keys(GROUPS).map((gv) => {
          const [name, version] = gv.split('/') as [string, string];
          const v = { groupVersion: gv, version };
          return { name, versions: [v], preferredVersion: v };
        }),
      });
    const gv = path === '/api/v1' ? 'v1' : /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
    if (gv && RESOURCES[gv])
      return send(200, {
        kind: 'APIResourceList',
        groupVersion: gv,
        resources: RESOURCES[gv].map(([name, kind]) => ({
          name,
          singularName: kind.toLowerCase(),
          namespaced: true,
          kind,
          verbs: ['get', 'list', 'create'],
        })),
      });
    const list = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(path);
    if (list && req.method === 'GET')
      return send(200, {
        kind: 'SecretList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '1' },
        items: secrets
          .filter((s) => s.namespace === list[1])
          .map((s) => ({
            metadata: { name: s.name, namespace: s.namespace },
            type: 'Opaque',
            data: Object.fromEntries(s.keys.map((k) => [k, Buffer.from(`value of ${k}`).toString('base64')])),
          })),
      });
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: fake, cluster: {server: "http://127.0.0.1:${port}"}}]`,
      'users: [{name: fake, user: {token: fake}}]',
      'contexts: [{name: fake, context: {cluster: fake, user: fake}}]',
      'current-context: fake',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return {
    kubeconfig,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
