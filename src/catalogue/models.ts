/** The model job types: inference, training, classifier training and model delivery. */
import { z } from 'zod';
import { Count, Id, JsonObject } from './common.ts';

export const InferenceMessage = z.looseObject({
  role: z.enum(['system', 'user', 'assistant']),
  text: z.string().min(1),
});

export const ModelInferenceRunInput = z.looseObject({
  model: z.string().min(1),
  messages: z.array(InferenceMessage).min(1),
  inference_config: z.looseObject({
    output_format_schema: JsonObject,
    max_tokens: z.number().int().min(1).max(1_000_000),
    temperature: z.number().min(0).max(2).optional(),
  }),
});
export type ModelInferenceRunInput = z.infer<typeof ModelInferenceRunInput>;

export const ModelInferenceRunResult = z.looseObject({
  type: z.literal('model_inference_run'),
  structured_output: JsonObject,
  usage: z.looseObject({ completion_tokens: Count, prompt_tokens: Count, total_tokens: Count }),
});

const SemVerish = z
  .string()
  .regex(/^\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$/, 'must be a version such as 1.0.0');

export const ModelTrainingRunInput = z.looseObject({
  company_id: Id,
  dataset_id: Id,
  instance_type: z
    .string()
    .regex(/^ml\.[a-z0-9]+\.[a-z0-9]+$/, 'must be a SageMaker instance type such as ml.g5.2xlarge'),
  base_model_id: z.string().min(1),
  base_model_repository: z.enum(['huggingface', 'narrative', 's3']),
  trained_model_version: SemVerish,
  trained_model: z.looseObject({
    name: z.string().min(1),
    collaborators: z.looseObject({ owner_company_id: Id, viewer_company_ids: z.array(Id) }),
    description: z.string().optional(),
    tags: z.array(z.string()).optional(),
  }),
});
export type ModelTrainingRunInput = z.infer<typeof ModelTrainingRunInput>;

export const ModelTrainingRunResult = z.looseObject({
  type: z.literal('model_training_run'),
  result: z.looseObject({
    model_id: z.string().min(1),
    status: z.enum(['completed', 'failed', 'stopped']),
    metrics: z.record(z.string(), z.number()).optional(),
  }),
});

export const ModelsTrainClassifierInput = z.looseObject({
  config: z.looseObject({
    model_type: z.enum(['classification']),
    target_column: z.string().min(1),
    feature_columns: z.array(z.string().min(1)).min(1),
    training_table: z.string().min(1),
    output_model_name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'must be an identifier'),
  }),
  data_plane_id: z.string().min(1).optional(),
  tags: z.array(z.string()).optional(),
});
export type ModelsTrainClassifierInput = z.infer<typeof ModelsTrainClassifierInput>;

const Unit = z.number().min(0).max(1);
export const ModelsTrainClassifierResult = z.looseObject({
  type: z.literal('models_train_classifier'),
  result: z.looseObject({
    model_name: z.string().min(1),
    accuracy: Unit,
    f1_score: Unit,
    feature_importance: z.record(z.string(), z.number()),
  }),
});

export const ModelsDeliverModelInput = z.looseObject({
  company_id: Id,
  app_id: Id,
  connection_id: z.string().min(1),
  profile_id: z.uuid(),
  model_id: z.string().min(1),
  model_name: z.string().min(1),
  model_version: SemVerish,
  quick_settings: z.looseObject({ repository_visibility: z.enum(['private', 'public']) }).optional(),
});
export type ModelsDeliverModelInput = z.infer<typeof ModelsDeliverModelInput>;

export const ModelsDeliverModelResult = z.looseObject({
  type: z.literal('models_deliver_model'),
  result: z.looseObject({
    destination_url: z.url(),
    status: z.enum(['completed', 'failed']),
    model_files_uploaded: Count,
    total_size_bytes: Count,
  }),
});
