"""Score customers on a Spark cluster with the churnguard Python package.

Reads a feature table (Parquet, as written by ``churnguard features`` or
``churnguard.features``; optionally one snapshot of it), spreads it over the
cluster by a stable hash of the customer id, scores every partition with
``churnguard.load_model(...).score`` inside ``mapInArrow`` (Arrow batches in,
Arrow batches out; the model version's two files are shipped to each executor
once with ``addFile``), and writes the scores as Parquet: the columns of
``Model.score`` (customer_id, churn_probability, churn_type, health, band,
reasons, clv, expected_loss) plus ``model_version``.

    spark-submit spark/score_job.py --features s3://lake/churn/features.parquet \\
        --model models/20261130-...-logistic-8f0b99 --out s3://lake/churn/scores/2026-11-30

Each executor needs the ``churnguard`` wheel installed (``pip install ./crates/python``, or
``--py-files``/a cluster library on Databricks); OPERATIONS.md has the details.
"""

from __future__ import annotations

import argparse
import os
import sys

import polars as pl
import pyarrow as pa

import churnguard

# What ``Model.score`` returns, as Spark sees it, plus the version that scored.
OUTPUT = pa.schema(
    [
        ("customer_id", pa.string()),
        ("churn_probability", pa.float64()),
        ("churn_type", pa.string()),
        ("health", pa.float64()),
        ("band", pa.string()),
        ("reasons", pa.string()),
        ("clv", pa.float64()),
        ("expected_loss", pa.float64()),
        ("model_version", pa.string()),
    ]
)
SPARK_SCHEMA = (
    "customer_id string, churn_probability double, churn_type string, health double, "
    "band string, reasons string, clv double, expected_loss double, model_version string"
)


def score_batches():
    """The function ``mapInArrow`` runs on each partition: it loads the model
    once per partition (from the copy ``addFile`` put on the executor) and
    scores each Arrow batch."""

    def run(batches):
        from pyspark import SparkFiles

        model = churnguard.load_model(SparkFiles.getRootDirectory())
        for batch in batches:
            if batch.num_rows == 0:
                continue
            scores = model.score(pl.from_arrow(batch)).with_columns(
                pl.lit(model.id).alias("model_version")
            )
            yield from scores.to_arrow().cast(OUTPUT).to_batches()

    return run


def score(spark, features: str, model_dir: str, out: str, partitions: int, snapshot: str | None):
    """Runs the job on ``spark``; returns the number of customers scored."""
    model_dir = os.path.abspath(model_dir)
    churnguard.load_model(model_dir)  # fail here, on the driver, if it cannot be used
    # A version is two files; Spark ships files (not folders) to a cluster.
    for name in ("manifest.json", "model.json"):
        spark.sparkContext.addFile(os.path.join(model_dir, name))
    frame = spark.read.parquet(features)
    if snapshot:
        frame = frame.filter(frame.snapshot_date == snapshot)
    # A stable hash of the id decides each customer's partition (Spark's
    # Murmur3 on the column), so reruns place customers alike.
    frame = frame.repartition(partitions, "customer_id")
    scored = frame.mapInArrow(score_batches(), SPARK_SCHEMA)
    scored.write.mode("overwrite").parquet(out)
    return spark.read.parquet(out).count()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", required=True, help="feature table (Parquet file or folder)")
    p.add_argument("--model", required=True, help="a model version's folder (models/<id>)")
    p.add_argument("--out", required=True, help="output folder for the scores (Parquet)")
    p.add_argument("--partitions", type=int, default=8, help="partitions to score in (default 8)")
    p.add_argument("--snapshot", help="score only this snapshot_date (YYYY-MM-DD)")
    p.add_argument("--master", help="Spark master (default: spark-submit's)")
    args = p.parse_args(argv)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("churnguard-score")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        n = score(spark, args.features, args.model, args.out, args.partitions, args.snapshot)
    finally:
        spark.stop()
    print(f"scored {n} customers into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
