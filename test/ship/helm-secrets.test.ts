/**
 * The chart as a platform engineer meets it with `helm template`: no secret reaches the ConfigMap
 * (every secret variable of every executor is refused, from the one list that marks them secret),
 * secrets come from Secrets (secretEnv, secretFiles with an optional key), and the schema's and the
 * checks' messages are ones a human can act on. Plus the chart details: the spread selector, `helm
 * test`, the image digest and the icon.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { notDaemonVariables, secretVariables } from '../../src/cli/config-schema.ts';
import { CHART, describeHelm, example, HELM, helmTemplate as template } from '../support/helm.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dpo-helm-secrets-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valuesFile = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const rendered = (args: string[]) => {
  try {
    return {
      ok: true,
      out: execFileSync(HELM, ['template', 'dpo', CHART, ...args], { encoding: 'utf8', stdio: 'pipe' }),
    };
  } catch (err) {
    return { ok: false, out: String((err as { stderr?: string }).stderr) };
  }
};

describeHelm('secrets never reach the ConfigMap', () => {
  it("the issue's repro: DPO_SNOWFLAKE_PASSWORD in config is refused, naming secretEnv", () => {
    const r = rendered([
      '-f',
      example('snowflake'),
      '--set-string',
      'config.DPO_SNOWFLAKE_PASSWORD=hunter2hunter2',
    ]);
    expect(r.ok).toBe(false);
    expect(r.out).not.toContain('hunter2hunter2');
    expect(r.out).toMatch(
      /config\.DPO_SNOWFLAKE_PASSWORD is a secret.*use secretEnv\.DPO_SNOWFLAKE_PASSWORD: \{secretName: <an existing Secret>, key: <its key>\}/,
    );
  });

  it.each([...secretVariables()])('every secret variable of every section is refused: %s', (name) => {
    const r = template([example('aws')], [`config.${name}=s3cr3t-value-123`]);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(
      new RegExp(`config\\.${name} is a secret.*(operatorToken|secretEnv|secretFiles)`),
    );
  });

  it('secretEnv reads a variable from a key of an existing Secret: env secretKeyRef, not the ConfigMap', () => {
    const r = template(
      [example('snowflake')],
      [
        'config.DPO_SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE',
        'secretEnv.DPO_SNOWFLAKE_PASSWORD.secretName=sf-password',
        'secretEnv.DPO_SNOWFLAKE_PASSWORD.key=password',
      ],
    );
    expect(r.ok, r.error).toBe(true);
    expect(r.of('ConfigMap')[0].data).not.toHaveProperty('DPO_SNOWFLAKE_PASSWORD');
    const env = r.of('Deployment')[0].spec.template.spec.containers[0].env;
    expect(env).toContainEqual({
      name: 'DPO_SNOWFLAKE_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'sf-password', key: 'password' } },
    });
  });

  it('secretEnv refuses a name the daemon does not read, with a did-you-mean, and one also in config', () => {
    const typo = template(
      [example('snowflake')],
      ['secretEnv.DPO_SNOWFLAKE_PASWORD.secretName=s', 'secretEnv.DPO_SNOWFLAKE_PASWORD.key=k'],
    );
    expect(typo.error).toMatch(
      /secretEnv\.DPO_SNOWFLAKE_PASWORD is not a variable of the daemon \(did you mean DPO_SNOWFLAKE_PASSWORD\?\)/,
    );
    const both = template(
      [example('snowflake')],
      [
        'config.DPO_SNOWFLAKE_ROLE=R',
        'secretEnv.DPO_SNOWFLAKE_ROLE.secretName=s',
        'secretEnv.DPO_SNOWFLAKE_ROLE.key=k',
      ],
    );
    expect(both.error).toMatch(/DPO_SNOWFLAKE_ROLE is in both config and secretEnv/);
  });

  it("the snowflake example mounts the key pair's passphrase as optional, the private key as required", () => {
    const pod = template([example('snowflake')]).of('Deployment')[0].spec.template.spec;
    const volume = pod.volumes.find((v: any) => v.projected);
    expect(volume.projected.sources).toEqual([
      { secret: { name: 'snowflake-operator-key', items: [{ key: 'rsa_key.p8', path: 'rsa_key.p8' }] } },
      {
        secret: {
          name: 'snowflake-operator-key',
          optional: true,
          items: [{ key: 'passphrase', path: 'passphrase' }],
        },
      },
    ]);
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === volume.name);
    expect(mount).toEqual({ name: volume.name, mountPath: '/var/run/secrets/snowflake', readOnly: true });
  });
});

describeHelm('config: errors a human can read', () => {
  it('accepts numbers for number-like variables (--set and a values file), written as digits', () => {
    const f = valuesFile(
      'numbers.yaml',
      'config:\n  DPO_JOB_TIMEOUT_MS: 3600000\n  DPO_EMR_S3_FORCE_PATH_STYLE: true\n',
    );
    const r = template([example('aws'), f], ['config.DPO_CONCURRENCY=200']);
    expect(r.ok, r.error).toBe(true);
    expect(r.of('ConfigMap')[0].data).toMatchObject({
      DPO_CONCURRENCY: '200',
      DPO_JOB_TIMEOUT_MS: '3600000',
      DPO_EMR_S3_FORCE_PATH_STYLE: 'true',
    });
  });

  it('a typo gets a did-you-mean, not a list of every name', () => {
    const r = template([example('aws')], ['config.DPO_LOG_LEVL=debug', 'config.DPO_CONCURENCY=10']);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(
      /config\.DPO_LOG_LEVL is not a variable of the daemon \(did you mean DPO_LOG_LEVEL\?\)/,
    );
    expect(r.error).toMatch(
      /config\.DPO_CONCURENCY is not a variable of the daemon \(did you mean DPO_CONCURRENCY\?\)/,
    );
    expect(r.error).not.toMatch(/DPO_SAGEMAKER_VOLUME_GB/);
    const far = template([example('aws')], ['config.DPO_NOT_A_THING=x']);
    expect(far.error).toMatch(
      /config\.DPO_NOT_A_THING is not a variable of the daemon\n|config\.DPO_NOT_A_THING is not a variable of the daemon$/m,
    );
  });

  it.each([...notDaemonVariables().keys()].filter((n) => !secretVariables().has(n)))(
    'refuses %s, which only the control plane, dev or the jobs CLI read',
    (name) => {
      const r = template([example('aws')], [`config.${name}=1`]);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(
        new RegExp(`config\\.${name} is read by the .*, not by the daemon this chart deploys`),
      );
    },
  );

  it("refuses the chart's own variables, saying which value sets them", () => {
    const r = template([example('aws')], ['config.DPO_METRICS_LISTEN=0.0.0.0:1']);
    expect(r.error).toMatch(/config\.DPO_METRICS_LISTEN is set by the chart \(.*metricsPort/);
  });
});

describeHelm('chart details', () => {
  it('a topology spread constraint without a selector spreads this release (name and instance labels)', () => {
    const spread = template([example('aws')]).of('Deployment')[0].spec.template.spec
      .topologySpreadConstraints;
    expect(spread[0].labelSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'dataplane-operator',
      'app.kubernetes.io/instance': 'dpo',
    });
    const own = valuesFile(
      'spread.yaml',
      'topologySpreadConstraints:\n  - {maxSkew: 2, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {team: x}}}\n',
    );
    const kept = template([example('aws'), own]).of('Deployment')[0].spec.template.spec
      .topologySpreadConstraints;
    expect(kept[0].labelSelector).toEqual({ matchLabels: { team: 'x' } });
  });

  it('`helm test` runs a pod that checks /readyz through the Service, as the non-root user', () => {
    const r = template([example('aws')]);
    const pod = r.of('Pod').find((p: any) => p.metadata.annotations?.['helm.sh/hook'] === 'test');
    expect(pod).toBeDefined();
    const c = pod.spec.containers[0];
    expect(c.command.at(-1)).toBe('http://dpo-dataplane-operator.jobs.svc:9464/readyz');
    expect(c.command.join(' ')).toMatch(/r\.status === 200 \? 0 : 1/);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(template([example('aws')], ['service.enabled=false']).of('Pod')).toEqual([]);
  });

  it('an image digest, when given, is what the pod runs (the tag is then unused)', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const image = (sets: string[]) =>
      template([example('aws')], sets).of('Deployment')[0].spec.template.spec.containers[0].image;
    expect(image([])).toBe('ghcr.io/example/dataplane-operator:0.1.0');
    expect(image([`image.digest=${digest}`, 'image.tag=9.9.9'])).toBe(
      `ghcr.io/example/dataplane-operator@${digest}`,
    );
    expect(template([example('aws')], ['image.digest=latest']).error).toMatch(/image\/digest/);
  });

  it("the install's notes list every Secret the pod reads, and how to check the pod's configuration", () => {
    const notes = execFileSync(
      HELM,
      ['install', 'dpo', CHART, '--dry-run=client', '-f', example('snowflake')],
      {
        encoding: 'utf8',
      },
    );
    expect(notes).toMatch(/dataplane-operator-token \(keys: token\): operatorToken/);
    expect(notes).toMatch(/snowflake-operator-key \(keys: rsa_key\.p8\): secretFiles\[0\]/);
    expect(notes).toMatch(/config check --with-env/);
    expect(notes).toMatch(/helm test dpo/);
  });

  it('has an icon (helm lint is clean of the icon recommendation)', () => {
    const out = execFileSync(HELM, ['lint', CHART, '-f', example('snowflake')], { encoding: 'utf8' });
    expect(out).not.toMatch(/icon is recommended/);
    expect(out).toMatch(/0 chart\(s\) failed/);
  });
});
