/**
 * The reference training script (executors/sagemaker/training/train.py): CI compiles it (no GPU, no
 * transformers here to run it), and its contract with the executor holds: the metric lines it prints
 * are the ones the executor's metric definitions read.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC_DEFINITIONS } from '../../executors/sagemaker/training.ts';

const SCRIPT = join(import.meta.dirname, '..', '..', 'executors', 'sagemaker', 'training', 'train.py');

describe('the reference training script', () => {
  it('compiles with python3', () => {
    const out = mkdtempSync(join(tmpdir(), 'dpo-train-'));
    expect(() =>
      execFileSync('python3', [
        '-c',
        `import py_compile; py_compile.compile(${JSON.stringify(SCRIPT)}, cfile=${JSON.stringify(join(out, 't.pyc'))}, doraise=True)`,
      ]),
    ).not.toThrow();
  });

  it('parses the hyperparameters the executor sends, ignoring SageMaker’s own', () => {
    const out = execFileSync('python3', [
      '-c',
      `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location('train', ${JSON.stringify(SCRIPT)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
a = m.parse_args(['--base_model_id', 'meta-llama/Llama-2-7b-hf', '--model_id', 'company-56-x-v1', '--sagemaker_program', '"train.py"', '--epochs', '2'])
print(json.dumps({'base': a.base_model_id, 'model': a.model_id, 'epochs': a.epochs}))`,
    ]).toString();
    expect(JSON.parse(out)).toEqual({
      base: 'meta-llama/Llama-2-7b-hf',
      model: 'company-56-x-v1',
      epochs: 2,
    });
  });

  it('prints loss lines in the form the metric definitions capture', () => {
    // What the Hugging Face Trainer logs (and the script prints at the end).
    const log = "{'loss': 1.2345, 'learning_rate': 2e-05, 'epoch': 0.5}\n{'eval_loss': 0.987, 'epoch': 1.0}";
    const got = Object.fromEntries(
      METRIC_DEFINITIONS.map((d) => [d.Name, Number(new RegExp(d.Regex).exec(log)?.[1])]),
    );
    expect(got).toEqual({ training_loss: 1.2345, validation_loss: 0.987 });
    expect(readFileSync(SCRIPT, 'utf8')).toContain('{"eval_loss": final.get("eval_loss")}');
  });
});
