"""spark/score_job.py in Spark's local mode with two executors: its scores
equal the single-process package's, row for row."""

import importlib.util
import os
import sys
from pathlib import Path

import polars as pl
import pytest

import churnguard

ROOT = Path(__file__).resolve().parents[2]


def spark_job():
    spec = importlib.util.spec_from_file_location("score_job", ROOT / "spark" / "score_job.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


@pytest.fixture(scope="module")
def spark():
    if importlib.util.find_spec("pyspark") is None:
        if os.environ.get("CHURNGUARD_REQUIRE_SPARK") == "1":
            pytest.fail("pyspark is required (CHURNGUARD_REQUIRE_SPARK=1) but not installed")
        pytest.skip("pyspark is not installed")
    from pyspark.sql import SparkSession

    # The executors' Python is this one, where churnguard is installed (on
    # a cluster: every node's, see OPERATIONS.md).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # Two executor processes of one core each: partitions really are
    # scored apart, each with its own copy of the model.
    session = (
        SparkSession.builder.master(os.environ.get("CHURNGUARD_SPARK_MASTER", "local-cluster[2,1,1024]"))
        .appName("churnguard-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_the_spark_job_scores_every_row_as_one_process_does(company, spark, tmp_path):
    registry = company / "models"
    version = registry / (registry / "champion").read_text().strip()
    out = tmp_path / "scores"
    n = spark_job().score(
        spark, str(company / "latest.parquet"), str(version), str(out), partitions=4, snapshot=None
    )
    by_spark = pl.read_parquet(out / "*.parquet").sort("customer_id")
    alone = (
        churnguard.load_model(version).score(pl.read_parquet(company / "latest.parquet"))
        .with_columns(pl.lit(version.name).alias("model_version"))
        .sort("customer_id")
    )
    assert n == alone.height > 100
    assert by_spark.columns == alone.columns
    # The same customers, each with the same scores.
    assert by_spark.equals(alone), by_spark.join(alone, on="customer_id", suffix="_alone").head()
    # Spark really split the work.
    assert len(list(out.glob("part-*.parquet"))) >= 2
