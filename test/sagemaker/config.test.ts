/** The sagemaker executor's configuration and names: defaults, refusals by variable name, limits. */
import { describe, expect, it } from 'vitest';
import { loadSageMakerConfig, modelId, slug } from '../../executors/sagemaker/config.ts';
import { trainingJobName } from '../../executors/sagemaker/training.ts';
import { ConfigError } from '../../src/lib/config.ts';

const REQUIRED = {
  DPO_SAGEMAKER_REGION: 'eu-west-1',
  DPO_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-training',
  DPO_SAGEMAKER_S3_URI: 's3://dpo-models/operator/',
  DPO_SAGEMAKER_SOURCE_URI: 's3://dpo-models/code/sourcedir.tar.gz',
};

const issues = (env: Record<string, string>) => {
  try {
    loadSageMakerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
};

describe('sagemaker configuration', () => {
  it('has working defaults: the region’s Hugging Face image, the dataset prefix, the allow-list', () => {
    const c = loadSageMakerConfig(REQUIRED);
    expect(c.imageUri).toBe(
      '763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04',
    );
    expect(c).toMatchObject({
      bucket: 'dpo-models',
      prefix: 'operator',
      datasetUriTemplate: 's3://dpo-models/operator/datasets/{company_id}/{dataset_id}/',
      instanceTypes: ['ml.g5.xlarge', 'ml.g5.2xlarge', 'ml.g5.12xlarge', 'ml.p4d.24xlarge'],
      spot: false,
      hubUrl: 'https://huggingface.co',
      connections: {},
    });
    const perRegion = loadSageMakerConfig({
      ...REQUIRED,
      DPO_SAGEMAKER_IMAGE_URIS: JSON.stringify({ 'eu-west-1': 'mine.example/{region}:1' }),
    });
    expect(perRegion.imageUri).toBe('mine.example/eu-west-1:1');
  });

  it('names each bad variable', () => {
    const bad = issues({
      ...REQUIRED,
      DPO_SAGEMAKER_ROLE_ARN: 'not-an-arn',
      DPO_HF_CONNECTIONS: '{"conn-1": {"namespace": "acme"}}',
      DPO_SAGEMAKER_HYPERPARAMETERS: '{"epochs": 3}',
      DPO_SAGEMAKER_SPOT: 'yes',
    });
    expect(bad.map((i) => i.split(':')[0]).sort()).toEqual([
      'DPO_HF_CONNECTIONS',
      'DPO_SAGEMAKER_HYPERPARAMETERS',
      'DPO_SAGEMAKER_ROLE_ARN',
      'DPO_SAGEMAKER_SPOT',
    ]);
    const { DPO_SAGEMAKER_REGION: _r, ...noRegion } = REQUIRED;
    expect(issues(noRegion)).toEqual([
      expect.stringMatching(/^DPO_SAGEMAKER_REGION: set it \(or AWS_REGION\)/),
    ]);
  });
});

describe('names', () => {
  it('the model id follows the template, as a slug', () => {
    expect(
      modelId('company-{company_id}-{name}-v{version}', 56, 'Custom Llama for Classification!', '1.0.0'),
    ).toBe('company-56-custom-llama-for-classification-v1-0-0');
    expect(slug('  ---  ')).toBe('model');
  });

  it('the training job name fits SageMaker’s rules, whatever the job id', () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    expect(trainingJobName(uuid, 'abcdef01', 12)).toBe(`dpo-${uuid}-abcdef01-12`);
    for (const id of [`${uuid}-and-a-long-suffix`, 'job_with_underscores', 'x'.repeat(200)]) {
      const name = trainingJobName(id, 'abcdef01', 3);
      expect(name).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
      expect(name).toMatch(/^dpo-[0-9a-f]{32}-abcdef01-3$/);
      // Deterministic, and distinct per job.
      expect(trainingJobName(id, 'abcdef01', 3)).toBe(name);
    }
    expect(trainingJobName('job_a', 'abcdef01', 1)).not.toBe(trainingJobName('job_b', 'abcdef01', 1));
  });
});
