/**
 * The chart as Helm renders it (Helm 4 from scripts/get-helm.sh, or HELM_BIN): what each example really
 * deploys (strategy, replicas, volumes), what the schema refuses at `helm template` time, the
 * ServiceMonitor's capability check and the optional NetworkPolicy. No cluster is needed.
 */
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import {
  CHART,
  describeHelm,
  example,
  HELM,
  type Rendered,
  helmTemplate as template,
} from '../support/helm.ts';

const deployment = (r: Rendered) => r.of('Deployment')[0];

describeHelm('helm lint', () => {
  it.each(['aws', 'local', 'snowflake'])('passes on examples/values-%s.yaml', (name) => {
    const out = execFileSync(HELM, ['lint', CHART, '-f', example(name)], { encoding: 'utf8' });
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
});

describeHelm('the default values', () => {
  it('render nothing until a profile names the control plane, the data plane and the executors', () => {
    const r = template([]);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(
      /missing properties 'DPO_CONTROL_PLANE_URL', 'DPO_DATA_PLANE_ID', 'DPO_EXECUTORS'/,
    );
  });

  it('refuse the local executor on an emptyDir unless the values say it is a throwaway warehouse', () => {
    const base = ['config.DPO_CONTROL_PLANE_URL=https://jobs.acme.internal', 'config.DPO_DATA_PLANE_ID=dp-x'];
    const local = template([], [...base, 'config.DPO_EXECUTORS=local']);
    expect(local.ok).toBe(false);
    expect(local.error).toMatch(/persistentVolumeClaim/);
    const demo = template([], [...base, 'config.DPO_EXECUTORS=local', 'dataVolume.ephemeralWarehouse=true']);
    expect(demo.ok, demo.error).toBe(true);
    const cloud = template([], [...base, 'config.DPO_EXECUTORS=emr-serverless']);
    expect(cloud.ok, cloud.error).toBe(true);
  });
});

describeHelm('the strategy follows the data volume', () => {
  it('local (a persistentVolumeClaim): one replica, Recreate, the claim mounted', () => {
    const r = template([example('local')]);
    expect(r.ok, r.error).toBe(true);
    const d = deployment(r);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    const data = d.spec.template.spec.volumes.find((v: any) => v.name === 'data');
    expect(data.persistentVolumeClaim.claimName).toBe('dataplane-operator-warehouse');
  });

  it('a claim refuses RollingUpdate and a second replica (the new pod could never open the DuckDB file)', () => {
    const rolling = template([example('local')], ['strategy.type=RollingUpdate']);
    expect(rolling.ok).toBe(false);
    expect(rolling.error).toMatch(/strategy\/type': value must be 'Recreate'/);
    const two = template([example('local')], ['replicaCount=2']);
    expect(two.ok).toBe(false);
    expect(two.error).toMatch(/replicaCount': maximum: got 2, want 1/);
  });

  it('aws (no local state): a RollingUpdate that starts the new pod before stopping the old', () => {
    const d = deployment(template([example('aws')]));
    expect(d.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const chosen = deployment(template([example('aws')], ['strategy.type=Recreate']));
    expect(chosen.spec.strategy).toEqual({ type: 'Recreate' });
  });
});

describeHelm('configuration', () => {
  it('a misspelt variable in config is refused by helm itself', () => {
    const r = template([example('aws')], ['config.DPO_CONCURENCY=10']);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(
      /config\.DPO_CONCURENCY is not a variable of the daemon \(did you mean DPO_CONCURRENCY\?\)/,
    );
  });

  it('the token is mounted read-only for the non-root user, and the process runs as that user', () => {
    const pod = deployment(template([example('aws')])).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === 'operator-token');
    expect(mount).toMatchObject({ mountPath: '/var/run/secrets/dataplane-operator', readOnly: true });
    expect(template([example('aws')]).of('ConfigMap')[0].data.DPO_TOKEN_FILE).toBe(
      '/var/run/secrets/dataplane-operator/token',
    );
  });
});

describeHelm('ServiceMonitor', () => {
  it('is rendered only where the monitoring.coreos.com/v1 API exists', () => {
    expect(template([example('aws')]).of('ServiceMonitor')).toEqual([]);
    const r = template([example('aws')], [], ['monitoring.coreos.com/v1/ServiceMonitor']);
    expect(r.of('ServiceMonitor')).toHaveLength(1);
    expect(r.of('ServiceMonitor')[0].spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
  });

  it("the install's notes say when one was asked for and the cluster has no such API", () => {
    // `helm install --dry-run=client` renders NOTES.txt against a cluster with no monitoring API.
    const notes = (sets: string[]) =>
      execFileSync(
        HELM,
        [
          'install',
          'dpo',
          CHART,
          '--dry-run=client',
          '-f',
          example('aws'),
          ...sets.flatMap((x) => ['--set', x]),
        ],
        { encoding: 'utf8' },
      );
    expect(notes([])).toContain('no ServiceMonitor was created');
    expect(notes(['serviceMonitor.enabled=false'])).not.toContain('no ServiceMonitor was created');
  });
});

describeHelm('NetworkPolicy', () => {
  it('is off by default', () => {
    expect(template([example('aws')]).of('NetworkPolicy')).toEqual([]);
  });

  it('admits only the metrics port, and lets out only DNS and the listed egress', () => {
    const r = template(
      [example('aws')],
      [
        'networkPolicy.enabled=true',
        'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring',
        'networkPolicy.egress[0].to[0].ipBlock.cidr=10.20.0.0/16',
        'networkPolicy.egress[0].ports[0].port=443',
      ],
    );
    expect(r.ok, r.error).toBe(true);
    const [policy] = r.of('NetworkPolicy');
    expect(policy.spec.podSelector.matchLabels).toEqual(deployment(r).spec.selector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.spec.ingress).toEqual([
      {
        ports: [{ port: 9464, protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }],
      },
    ]);
    expect(policy.spec.egress).toEqual([
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ port: 443 }] },
    ]);
  });

  it('by default lets HTTPS out to anywhere (AWS and Snowflake have no fixed addresses)', () => {
    const [policy] = template([example('aws')], ['networkPolicy.enabled=true']).of('NetworkPolicy');
    expect(policy.spec.egress[1]).toEqual({ ports: [{ port: 443, protocol: 'TCP' }] });
    expect(policy.spec.ingress[0].from).toBeUndefined();
  });
});
