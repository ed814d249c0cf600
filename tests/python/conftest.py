"""Shared fixtures: a small generated company, its features and a trained
registry, made with the churnguard command line."""

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

BIN = os.environ.get("CHURNGUARD_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug" / "churnguard"
)
TABLES = [
    "customers", "employees", "leads", "subscriptions", "invoices",
    "payments", "usage", "tickets", "surveys", "churn_events",
]


def cli(*args, cwd):
    out = subprocess.run([BIN, *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="session")
def company(tmp_path_factory):
    d = tmp_path_factory.mktemp("co")
    cli("generate", "--customers", "800", "--seed", "3", "--out", "co", cwd=d)
    cli("features", "--data", "co", "--out", "f.parquet", cwd=d)
    cli("features", "--data", "co", "--snapshot", "latest", "--out", "latest.parquet", cwd=d)
    cli("train", "--data", "f.parquet", "--families", "logistic,tree", "--registry", "models", cwd=d)
    cli("predict", "--data", "latest.parquet", "--out", "p.csv", "--registry", "models", cwd=d)
    return d


def tables(d):
    return {t: pl.read_parquet(d / "co" / f"{t}.parquet") for t in TABLES}


