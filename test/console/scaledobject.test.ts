/**
 * The chart's optional KEDA ScaledObject as Helm renders it (Helm from scripts/get-helm.sh, or
 * HELM_BIN): a Prometheus trigger on the data plane's jobs from the control plane's queue metrics.
 */
import { expect, it } from 'vitest';
import { describeHelm, example, helmTemplate } from '../support/helm.ts';

const AWS = example('aws');
const KEDA_API = 'keda.sh/v1alpha1/ScaledObject';

function template(sets: string[], apiVersions: string[] = [KEDA_API], files = [AWS]) {
  const r = helmTemplate(files, sets, apiVersions);
  return {
    ok: r.ok,
    error: r.error,
    scaled: r.of('ScaledObject'),
    deployment: r.of('Deployment')[0],
  };
}

describeHelm('the KEDA ScaledObject', () => {
  const on = ['keda.enabled=true', 'keda.prometheus.serverAddress=http://prometheus.monitoring:9090'];

  it("scales the Deployment on the data plane's pending and running jobs, jobsPerReplica each", () => {
    const r = template([...on, 'keda.maxReplicas=6', 'keda.jobsPerReplica=4']);
    expect(r.error).toBe('');
    expect(r.scaled).toHaveLength(1);
    const so = r.scaled[0];
    expect(so.spec.scaleTargetRef.name).toBe('dpo-dataplane-operator');
    expect(so.spec).toMatchObject({ minReplicaCount: 1, maxReplicaCount: 6 });
    expect(so.spec.triggers).toEqual([
      {
        type: 'prometheus',
        metricType: 'AverageValue',
        metadata: {
          serverAddress: 'http://prometheus.monitoring:9090',
          query: 'sum(dpo_cp_queue_jobs{data_plane_id="dp-aws-prod",state=~"pending|running"}) or vector(0)',
          threshold: '4',
          activationThreshold: '0',
        },
      },
    ]);
  });

  it('leaves the replica count to KEDA (an upgrade must not reset it), and sets it without KEDA', () => {
    const scaled = template([...on, 'replicaCount=3']);
    expect(scaled.error).toBe('');
    expect(scaled.deployment.spec).not.toHaveProperty('replicas');
    const fixed = template(['replicaCount=3']);
    expect(fixed.deployment.spec.replicas).toBe(3);
    // Asked for on a cluster without KEDA: no ScaledObject, so the Deployment keeps its count.
    expect(template([...on, 'replicaCount=3'], []).deployment.spec.replicas).toBe(3);
  });

  it('takes a query of its own and a TriggerAuthentication', () => {
    const r = template([
      ...on,
      'keda.prometheus.query=sum(dpo_cp_queue_jobs{state="pending"})',
      'keda.prometheus.authenticationRef=prom-auth',
    ]);
    expect(r.scaled[0].spec.triggers[0].metadata.query).toBe('sum(dpo_cp_queue_jobs{state="pending"})');
    expect(r.scaled[0].spec.triggers[0].authenticationRef).toEqual({ name: 'prom-auth' });
  });

  it('is off by default, and rendered only where the KEDA API exists', () => {
    expect(template([]).scaled).toEqual([]);
    const noCrd = template(on, []);
    expect(noCrd.ok).toBe(true);
    expect(noCrd.scaled).toEqual([]);
  });

  it('is refused without a Prometheus address, and with a persistentVolumeClaim (one pod holds the DuckDB file)', () => {
    const noProm = template(['keda.enabled=true']);
    expect(noProm.ok).toBe(false);
    expect(noProm.error).toMatch(/keda\/prometheus/);
    const local = template(on, [KEDA_API], [example('local')]);
    expect(local.ok).toBe(false);
    expect(local.error).toMatch(/keda\/enabled/);
  });
});
