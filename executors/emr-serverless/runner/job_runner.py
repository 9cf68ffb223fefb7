"""Reference Spark job runner for the data-plane operator on EMR Serverless.

The operator writes a job spec to S3 and starts this script with ``--spec s3://…/spec.json``. The
script runs the job on Spark (Iceberg tables in the Glue catalogue) and writes exactly one of:

* ``spec.output.result``: the job type's result, JSON, in the shape of the job catalogue;
* ``spec.output.error``: ``{"kind": "query" | "capacity" | "internal", "message": …}``, then exits 1.

Every decision that can be made before Spark runs is made by the operator (TypeScript, tested) and
arrives in ``spec.plan``: this script interprets it and does nothing clever. The contract is in
README.md next to this file. CI does not run this script (no Spark there); it only compiles it.
"""

import argparse
import json
import sys
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

import boto3
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException, ParseException

SPEC_VERSION = 1


def s3_read(uri):
    u = urlparse(uri)
    body = boto3.client("s3").get_object(Bucket=u.netloc, Key=u.path.lstrip("/"))["Body"].read()
    return json.loads(body)


def s3_write(uri, obj):
    u = urlparse(uri)
    boto3.client("s3").put_object(
        Bucket=u.netloc, Key=u.path.lstrip("/"), Body=json.dumps(obj).encode(), ContentType="application/json"
    )


def conf(spark, key, default):
    return spark.conf.get(f"spark.dpo.{key}", default)


def dataset_table(spark, company_id, dataset_id):
    catalog = conf(spark, "catalog", "glue_catalog")
    return f"{catalog}.company_{int(company_id)}.dataset_{int(dataset_id)}"


MAX_SAFE_INTEGER = 2**53 - 1


def exact_int(v):
    """The contract's 64-bit rule: an integer beyond +/-(2^53 - 1) is written as a decimal string,
    because every JavaScript reader would round a JSON number that large."""
    v = int(v)
    return v if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER else str(v)


def json_value(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return exact_int(v)
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()
    if isinstance(v, float) and v != v:  # NaN
        return "NaN"
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


def nql_forecast(spark, spec):
    max_rows = int(spec["plan"]["max_rows"])
    df = spark.sql(spec["input"]["compiled_sql"])
    rows = df.limit(max_rows + 1).collect()
    out = {
        "type": "Success",
        "result": {"columns": df.columns, "rows": [[json_value(v) for v in r] for r in rows[:max_rows]]},
    }
    if len(rows) > max_rows:
        out["truncated"] = True
    return out


def materialize_view(spark, spec):
    job, inp = spec["job"], spec["input"]
    table = dataset_table(spark, job["company_id"], inp["dataset_id"])
    committed_at = datetime.now(timezone.utc).replace(microsecond=0)
    df = spark.sql(inp["compiled_select"])
    if "_nio_last_modified_at" in df.columns:
        df = df.drop("_nio_last_modified_at")
    df = df.withColumn("_nio_last_modified_at", F.lit(committed_at).cast("timestamp"))
    chunk = inp.get("chunk_metadata")
    first_of_batch = not chunk or chunk["chunk_sequence"]["number"] == 1
    exists = spark.catalog.tableExists(table)
    writer = df.writeTo(table).using("iceberg")
    if not exists or (inp.get("first_run") and first_of_batch):
        parts = [F.col(p["field"]) if p["fn"] == "identity" else getattr(F, p["fn"] + "s")(p["field"])
                 for p in inp.get("partitions") or []]
        (writer.partitionedBy(*parts) if parts else writer).createOrReplace()
    elif inp.get("merge"):
        writer.overwritePartitions()
    else:
        writer.append()
    snapshot = spark.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at DESC LIMIT 1").first()
    batch = chunk["batch_id"] if chunk else job["id"]
    return {
        "dataset_id": inp["dataset_id"],
        # Iceberg snapshot ids are random 64-bit integers: always a decimal string (64-bit rule).
        "snapshot_id": str(int(snapshot["snapshot_id"])),
        "recalculation_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataplane-operator:{batch}")),
        "nio_last_modified_at": committed_at.isoformat().replace("+00:00", "Z"),
    }


def billing(spark, spec):
    rows = spark.sql(spec["input"]["compiled_query"]).collect()
    sources = [
        {"access_rule_id": exact_int(r["_nio_access_rule_id"]), "rows": exact_int(r["rows"]),
         "price_per_row": {"micro_cents_usd": exact_int(r["_nio_price_per_row"])}}
        for r in rows if r["_nio_access_rule_id"] is not None
    ]
    sources.sort(key=lambda s: int(s["access_rule_id"]))
    return {"type": "materialized_views_collect_access_rules_billing_data", "sources": sources}


def datasets_sample(spark, spec):
    job, inp = spec["job"], spec["input"]
    table = dataset_table(spark, job["company_id"], inp["dataset_id"])
    n = int(spec["plan"]["rows"])
    catalog = conf(spark, "catalog", "glue_catalog")
    target = f"{catalog}.samples.dataset_{int(inp['dataset_id'])}"
    spark.table(table).orderBy(F.rand(seed=42)).limit(n).writeTo(target).using("iceberg").createOrReplace()
    return {"type": "datasets_sample"}


def estimate(spark, spec):
    """forecast, forecast-internal and costs: the plan's rules over the dataset catalogue."""
    plan = spec["plan"]
    if plan["unsupported_filters"]:
        return {"type": "failure", "msg": f"unsupported filters: {', '.join(plan['unsupported_filters'])}"}
    attributes = {r["attribute_id"]: r["name"] for r in spark.table(conf(spark, "attributes_table", "glue_catalog.dpo.attributes")).collect()}
    candidates = spark.table(conf(spark, "datasets_table", "glue_catalog.dpo.datasets")).where(plan["company_predicate"]).collect()
    sources, per_dataset = [], []
    for c in sorted(candidates, key=lambda r: r["dataset_id"]):
        df = spark.table(dataset_table(spark, c["company_id"], c["dataset_id"]))
        required = [attributes.get(a["attribute_id"]) for a in plan["attributes"] if not a["optional"]]
        eligible = all(name in df.columns for name in required) and (
            plan["ingestion_predicate"] is None or plan["ingestion_column"] in df.columns)
        total = df.count() if eligible else 0
        width = sum(f.dataType.defaultSize() for f in df.schema.fields)
        sources.append({"rows": total, "size": total * width, "source": {"type": "dataset", "dataset_id": c["dataset_id"]}})
        if plan["mode"] == "costs" or not eligible:
            continue
        rows = df.sample(fraction=plan["sample_fraction"], seed=c["dataset_id"]) if plan["scale"] > 1 else df
        for a in plan["attributes"]:
            if attributes.get(a["attribute_id"]) in df.columns:
                for expr in a["not_null"]:
                    rows = rows.where(f"{expr} IS NOT NULL")
        if plan["ingestion_predicate"]:
            rows = rows.where(plan["ingestion_predicate"])
        n = rows.count() * plan["scale"]
        per_dataset.append({"dataset_id": c["dataset_id"], "rows": n,
                            "cost": n * plan["price_micro_cents_per_1000_rows"] // 1000})
    scan = {"rows": sum(s["rows"] for s in sources), "size": sum(s["size"] for s in sources), "sources": sources}
    if plan["mode"] == "costs":
        return {"type": "success", "cost": scan}
    rows = sum(d["rows"] for d in per_dataset)
    return {"type": "success", "cost": rows * plan["price_micro_cents_per_1000_rows"] // 1000, "rows": rows,
            "datasets": per_dataset, "estimator": plan["estimator"], "scan_cost": scan}


HANDLERS = {
    "nql-forecast": nql_forecast,
    "materialize-view": materialize_view,
    "materialized_views_collect_access_rules_billing_data": billing,
    "datasets_sample": datasets_sample,
    "forecast": estimate,
    "forecast-internal": estimate,
    "costs": estimate,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    args = parser.parse_args()
    spec = s3_read(args.spec)
    if spec.get("version") != SPEC_VERSION:
        raise SystemExit(f"spec version {spec.get('version')} is not {SPEC_VERSION}")
    spark = SparkSession.builder.appName(f"dpo-{spec['job']['type']}-{spec['job']['id'][:8]}").getOrCreate()
    try:
        result = HANDLERS[spec["job"]["type"]](spark, spec)
    except (AnalysisException, ParseException) as e:
        s3_write(spec["output"]["error"], {"kind": "query", "message": str(e)[:4000]})
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 — anything else is worth another try
        s3_write(spec["output"]["error"], {"kind": "internal", "message": f"{type(e).__name__}: {e}"[:4000]})
        sys.exit(1)
    s3_write(spec["output"]["result"], result)


if __name__ == "__main__":
    main()
