"""Shared by the Python peers: reading a churnguard feature table, its split
(churnguard's rolling-origin backtest), the preprocessing churnguard fits,
and the health index arithmetic."""

import json
import math

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HORIZON = 90


def roles(schema_path):
    """(numeric, categorical) model inputs from a `<table>.schema.json`."""
    cols = json.load(open(schema_path))["columns"]
    num = [c["name"] for c in cols if c["role"] == "numeric"]
    cat = [c["name"] for c in cols if c["role"] == "categorical"]
    return num, cat


def preprocessor(num, cat):
    """churnguard's preprocessing: median imputation and standardisation of
    numeric inputs, one-hot of categorical inputs with an unknown bucket."""
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), num),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat),
        ]
    )


def days(series):
    """Dates as days since 1970-01-01."""
    s = pd.to_datetime(series)
    return ((s - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy()


def horizon_days(schema_path):
    """The label horizon of a feature table, from its `.schema.json` (90 when
    absent, as churnguard reads it)."""
    try:
        return int(json.load(open(schema_path)).get("horizon_days", HORIZON))
    except (OSError, ValueError, TypeError):
        return HORIZON


def rolling_origins(df, horizon=HORIZON, n=3):
    """churnguard's rolling-origin backtest of a feature table
    (crates/train/src/split.rs `rolling_origins`), on its labelled rows: the
    last `n` snapshots that have rows of both classes and a training window
    of both classes, where an origin's training window is every row whose
    `snapshot + horizon <= origin` and its test rows are the origin's own.
    Oldest first, as (origin day, window rows, test rows). The last origin is
    churnguard's test: its final model is the one fitted on that window
    (every window row for logistic, tree and neural; without early stopping,
    gbdt too)."""
    d = days(df["snapshot_date"])
    y = df["churned"].to_numpy()

    def both(rows):
        pos = int((y[rows] == 1).sum())
        return 0 < pos < len(rows)

    out = []
    for day in np.unique(d)[::-1]:
        if len(out) == n:
            break
        window = np.flatnonzero(d + horizon <= day)
        test = np.flatnonzero(d == day)
        if both(window) and both(test):
            out.append((int(day), window, test))
    if not out:
        raise ValueError(f"no snapshot has an earlier {horizon}-day training window with "
                         "churners and non-churners")
    return out[::-1]


def grouped_holdout(ids, rows, fraction, seed):
    """Splits `rows` into (fit, held out) by customer: a `fraction` of the
    distinct ids (drawn with numpy's generator, so not churnguard's rows)
    are held out with all their rows."""
    keys = np.asarray(ids)[rows]
    distinct = np.unique(keys)
    rng = np.random.default_rng(seed)
    k = max(1, round(fraction * len(distinct)))
    held = np.isin(keys, rng.choice(distinct, size=k, replace=False))
    return rows[~held], rows[held]


def time_split(df, seed=42, test_fraction=0.2, validation_fraction=0.2):
    """The time-based split of churnguard before its rolling-origin backtest
    (kept for reference; the peers now use `rolling_origins`): test on the
    last ceil(20%) snapshots, train and validate on snapshots whose horizon
    ends by the first test snapshot (stratified 80/20)."""
    d = days(df["snapshot_date"])
    distinct = np.unique(d)
    n_test = min(max(math.ceil(len(distinct) * test_fraction), 1), len(distinct) - 1)
    first_test = distinct[len(distinct) - n_test]
    test = np.flatnonzero(d >= first_test)
    pool = np.flatnonzero(d + HORIZON <= first_test)
    y = df["churned"].to_numpy()
    train, val = train_test_split(
        pool, test_size=validation_fraction, stratify=y[pool], random_state=seed
    )
    return np.sort(train), np.sort(val), test


# The health index of churnguard's default [health] settings
# (src/health/mod.rs), vectorised over rows.
WEIGHTS = np.array([0.40, 0.20, 0.15, 0.15, 0.10])
ONBOARDING = np.array([0.30, 0.40, 0.10, 0.10, 0.10])
BANDS = (40.0, 70.0)  # red below yellow, green at or above green


def _col(df, name, n):
    if name in df:
        return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)
    return np.full(n, np.nan)


def _wmean(parts):
    num = np.zeros(len(parts[0][0]))
    den = np.zeros(len(parts[0][0]))
    for v, w in parts:
        ok = np.isfinite(v)
        num += np.where(ok, v * w, 0.0)
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def health(df, p):
    """Health score 0-100 and band of each row (churnguard's defaults:
    reweighting of missing components, the onboarding profile under 90 days)."""
    n = len(p)
    c = lambda name: _col(df, name, n)  # noqa: E731
    churn = np.clip(100.0 * (1.0 - np.clip(p, 0.0, 1.0) / 0.4), 0.0, 100.0)
    level = 100.0 * np.minimum(np.maximum(c("sessions_per_seat_30d"), 0.0) / 12.0, 1.0)
    trend = 50.0 + 50.0 * np.tanh(c("usage_trend") / 0.5)
    adoption = 100.0 * np.minimum(np.maximum(c("features_adopted"), 0.0) / 8.0, 1.0)
    engagement = np.clip(_wmean([(level, 0.5), (trend, 0.25), (adoption, 0.25)]), 0, 100)
    nps = 10.0 * np.clip(c("last_nps"), 0.0, 10.0)
    csat = 25.0 * (np.clip(c("last_csat"), 1.0, 5.0) - 1.0)
    satisfaction = np.clip(_wmean([(nps, 1.0), (csat, 1.0)]), 0, 100)
    f, late = c("payment_failures_90d"), c("late_payments_90d")
    load = 0.5 * np.nan_to_num(np.maximum(f, 0)) + 0.2 * np.nan_to_num(np.maximum(late, 0))
    payment = np.where(np.isfinite(f) | np.isfinite(late), np.clip(100 * np.exp(-load), 0, 100),
                       np.nan)
    t, sev, op = c("tickets_90d"), c("severe_tickets_90d"), c("open_tickets")
    load = (0.1 * np.nan_to_num(np.maximum(t, 0)) + 0.3 * np.nan_to_num(np.maximum(sev, 0))
            + 0.2 * np.nan_to_num(np.maximum(op, 0)))
    support = np.where(np.isfinite(t) | np.isfinite(sev) | np.isfinite(op),
                       np.clip(100 * np.exp(-load), 0, 100), np.nan)
    scores = np.stack([churn, engagement, satisfaction, payment, support], axis=1)
    tenure = c("tenure_days")
    w = np.where((np.isfinite(tenure) & (tenure < 90.0))[:, None], ONBOARDING, WEIGHTS)
    present = np.isfinite(scores)
    kept = (w * present).sum(axis=1, keepdims=True)
    eff = np.where(present & (kept > 0), w / np.where(kept > 0, kept, 1.0), 0.0)
    score = np.clip((eff * np.nan_to_num(scores, nan=50.0)).sum(axis=1), 0.0, 100.0)
    band = np.where(score >= BANDS[1], "green", np.where(score >= BANDS[0], "yellow", "red"))
    return score, band
