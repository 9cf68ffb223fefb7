"""Reference training script for the dataplane-operator's `sagemaker` executor.

Runs inside the Hugging Face PyTorch training container (script mode: SageMaker starts
`python train.py --<hyperparameter> <value> ...`). Contract: README.md next to this file.

It fine-tunes `base_model_id` (a Hugging Face id) as a causal language model on the text of the
`train` channel, writes the model to SM_MODEL_DIR (uploaded uncompressed by SageMaker), saves
checkpoints to /opt/ml/checkpoints (synced to S3, and resumed from after a spot interruption or a
retry), and prints `{'loss': x}` / `{'eval_loss': y}` lines that the executor's metric definitions
read as training_loss and validation_loss.
"""

import argparse
import glob
import json
import os
import sys

CHECKPOINT_DIR = "/opt/ml/checkpoints"
TEXT_FIELDS = ("text", "prompt", "completion", "content")


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--base_model_id", required=True)
    p.add_argument("--model_id", default="model")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--learning_rate", type=float, default=2e-5)
    p.add_argument("--per_device_batch_size", type=int, default=4)
    p.add_argument("--max_length", type=int, default=1024)
    p.add_argument("--validation_fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train_dir", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    # SageMaker also passes its own hyperparameters (sagemaker_program, ...): ignore what we do not know.
    args, _unknown = p.parse_known_args(argv)
    return args


def training_files(train_dir):
    """The channel's data files: JSON lines, Parquet or CSV (the data plane's export)."""
    found = {}
    for kind, pattern in (("json", "*.jsonl"), ("json", "*.json"), ("parquet", "*.parquet"), ("csv", "*.csv")):
        files = sorted(glob.glob(os.path.join(train_dir, "**", pattern), recursive=True))
        if files:
            found.setdefault(kind, []).extend(files)
    if not found:
        raise SystemExit(f"no training data (jsonl, json, parquet or csv) under {train_dir}")
    if len(found) > 1:
        raise SystemExit(f"mixed training data formats under {train_dir}: {sorted(found)}")
    return next(iter(found.items()))


def text_of(example):
    for field in TEXT_FIELDS:
        value = example.get(field)
        if isinstance(value, str) and value:
            return value
    return json.dumps(example, sort_keys=True, default=str)


def last_checkpoint(directory):
    if not os.path.isdir(directory):
        return None
    runs = [d for d in glob.glob(os.path.join(directory, "checkpoint-*")) if os.path.isdir(d)]
    if not runs:
        return None
    return max(runs, key=lambda d: int(d.rsplit("-", 1)[-1]) if d.rsplit("-", 1)[-1].isdigit() else -1)


def main(argv):
    args = parse_args(argv)
    # Imported here so that `python -m py_compile` (CI) needs none of them.
    import datasets
    import transformers

    kind, files = training_files(args.train_dir)
    raw = datasets.load_dataset(kind, data_files=files, split="train")
    split = raw.train_test_split(test_size=args.validation_fraction, seed=args.seed)

    tokenizer = transformers.AutoTokenizer.from_pretrained(args.base_model_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def tokenize(batch):
        rows = [dict(zip(batch.keys(), values)) for values in zip(*batch.values())]
        return tokenizer([text_of(r) for r in rows], truncation=True, max_length=args.max_length)

    columns = split["train"].column_names
    train = split["train"].map(tokenize, batched=True, remove_columns=columns)
    evaluation = split["test"].map(tokenize, batched=True, remove_columns=columns)

    model = transformers.AutoModelForCausalLM.from_pretrained(args.base_model_id)
    training_args = transformers.TrainingArguments(
        output_dir=CHECKPOINT_DIR,
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_batch_size,
        per_device_eval_batch_size=args.per_device_batch_size,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=10,
        # The Trainer logs `{'loss': ..., ...}` and `{'eval_loss': ..., ...}` dicts to stdout: the
        # executor's MetricDefinitions read exactly those.
        disable_tqdm=True,
        report_to=[],
        seed=args.seed,
    )
    trainer = transformers.Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=transformers.DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(CHECKPOINT_DIR))
    final = trainer.evaluate()
    print({"eval_loss": final.get("eval_loss")}, flush=True)

    os.makedirs(args.model_dir, exist_ok=True)
    trainer.save_model(args.model_dir)
    tokenizer.save_pretrained(args.model_dir)
    with open(os.path.join(args.model_dir, "dpo_training.json"), "w", encoding="utf-8") as f:
        json.dump({"model_id": args.model_id, "base_model_id": args.base_model_id, "metrics": final}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
