"""The Python package against the command line: the same data gives the
same features, probabilities and scores, and bad input raises
ChurnguardError naming what is wrong."""

import polars as pl
import pyarrow.parquet as pq
import pytest

import churnguard

from conftest import tables


def test_features_equal_the_command_line(company):
    ours = churnguard.features(tables(company), ["latest"], horizon_days=90)
    theirs = pl.read_parquet(company / "latest.parquet")
    assert ours.columns == theirs.columns
    assert ours.height == theirs.height > 100
    key = ["customer_id", "snapshot_date"]
    assert ours.sort(key).equals(theirs.sort(key))


def test_predictions_equal_the_command_line(company):
    model = churnguard.load_model(company / "models")
    assert model.family in ("logistic", "tree")
    assert model.horizon_days == 90
    ours = model.predict(pl.read_parquet(company / "latest.parquet"))
    theirs = pl.read_csv(company / "p.csv")
    id_col = model.inputs[0]
    joined = ours.with_columns(pl.col(id_col).cast(pl.Int64)).join(
        theirs.select(pl.col(id_col).cast(pl.Int64), pl.col("churn_probability").alias("cli")),
        on=id_col,
    )
    assert joined.height == ours.height == theirs.height
    assert (joined["churn_probability"] - joined["cli"]).abs().max() < 1e-9


def test_scores_carry_health_reasons_and_value(company):
    model = churnguard.load_model(company / "models", id="champion")
    latest = pq.read_table(company / "latest.parquet")  # a pyarrow Table works too
    scores = model.score(latest, top_reasons=2)
    assert scores.columns == [
        "customer_id", "churn_probability", "churn_type", "health", "band",
        "reasons", "clv", "expected_loss",
    ]
    assert scores["churn_probability"].is_between(0, 1).all()
    assert scores["health"].is_between(0, 100).all()
    assert set(scores["band"].unique()) <= {"green", "yellow", "red"}
    riskiest = scores.sort("churn_probability", descending=True).row(0, named=True)
    assert "raises risk" in riskiest["reasons"]
    assert (scores["clv"] >= 0).all()
    assert (scores["expected_loss"] - scores["churn_probability"] * scores["clv"]).abs().max() < 1e-6


def test_a_version_folder_loads_directly(company):
    champion = (company / "models" / "champion").read_text().strip()
    model = churnguard.load_model(company / "models" / champion)
    assert model.id == champion
    assert champion in repr(model)


def test_bad_input_raises_with_the_culprit_named(company):
    t = tables(company)
    del t["usage"]
    with pytest.raises(churnguard.ChurnguardError, match="usage"):
        churnguard.features(t, ["latest"])
    t = tables(company)
    t["payments"] = t["payments"].with_columns(pl.lit("soon").alias("attempt_date"))
    with pytest.raises(churnguard.ChurnguardError, match="attempt_date"):
        churnguard.features(t, ["latest"])
    with pytest.raises(churnguard.ChurnguardError, match="snapshot"):
        churnguard.features(tables(company), ["June"])
    with pytest.raises(churnguard.ChurnguardError, match="is this a registry"):
        churnguard.load_model(company / "nowhere")
    model = churnguard.load_model(company / "models")
    with pytest.raises(churnguard.ChurnguardError, match="tenure_days"):
        model.predict(pl.read_parquet(company / "latest.parquet").drop("tenure_days"))
    with pytest.raises(TypeError, match="polars DataFrame or a pyarrow Table"):
        model.predict({"not": "a frame"})
