"""The LightGBM peer of churnguard's gbdt family: the same boosting settings,
2 threads, on churnguard's feature table and the rows churnguard's final
model learns from.

    python train_lightgbm.py --data f.parquet [--trees 300] [--learning-rate 0.1]
        [--leaves 31] [--max-depth 0] [--min-data-in-leaf 20] [--min-sum-hessian 0.001]
        [--lambda-l2 1] [--min-gain 0] [--feature-fraction 1] [--bagging-fraction 1]
        [--max-bins 255] [--threads 2] [--seed 42]

Rows. churnguard trains a feature table by a rolling-origin backtest
(common.rolling_origins): its final model, the one its leaderboard's test
figures and `fit (s)` describe, is fitted on the last origin's training
window, every labelled row whose snapshot + horizon <= the last origin
snapshot (with early stopping off, gbdt holds no rows out), and tested on
that snapshot's rows. This script fits on exactly those window rows and
tests on exactly those rows.

Settings. The options mirror churnguard's `[gbdt]` keys (n_trees,
learning_rate, max_leaves, max_depth with 0 = no limit, min_data_in_leaf,
min_sum_hessian, lambda_l2, min_gain, feature_fraction, bagging_fraction,
max_bins) as LGBMClassifier's n_estimators, learning_rate, num_leaves,
max_depth (-1), min_child_samples, min_child_weight, reg_lambda,
min_split_gain, colsample_bytree, subsample (with subsample_freq 1 below
1.0), max_bin; no early stopping. Categorical inputs are pandas `category`
columns with the training rows' categories (LightGBM's native categorical
splits; missing or unseen values are NaN); numeric blanks stay NaN.
OMP_WAIT_POLICY=passive unless set (as flat_quality.py: on a machine shared
with other work, spinning OpenMP threads make a 2-thread fit many times
slower).

Fit seconds: from the feature rows in memory to the fitted model (the
category columns, LightGBM's Dataset and binning, the boosting), as
churnguard's `fit (s)` counts its preprocessing and model. Prints one JSON
line on stdout.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from common import horizon_days, roles, rolling_origins  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a churnguard feature table (Parquet)")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--leaves", type=int, default=31)
    ap.add_argument("--max-depth", type=int, default=0, help="0: no limit")
    ap.add_argument("--min-data-in-leaf", type=int, default=20)
    ap.add_argument("--min-sum-hessian", type=float, default=1e-3)
    ap.add_argument("--lambda-l2", type=float, default=1.0)
    ap.add_argument("--min-gain", type=float, default=0.0)
    ap.add_argument("--feature-fraction", type=float, default=1.0)
    ap.add_argument("--bagging-fraction", type=float, default=1.0)
    ap.add_argument("--max-bins", type=int, default=255)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    import lightgbm as lgb

    t_all = time.perf_counter()
    schema = a.data + ".schema.json"
    num, cat = roles(schema)
    df = pd.read_parquet(a.data)
    df = df[df["churned"].notna()].reset_index(drop=True)
    y = df["churned"].to_numpy().astype(np.int64)
    horizon = horizon_days(schema)
    origins = rolling_origins(df, horizon)
    origin, train, test = origins[-1]
    X = df[num + cat]
    params = dict(
        objective="binary", n_estimators=a.trees, learning_rate=a.learning_rate,
        num_leaves=a.leaves, max_depth=a.max_depth if a.max_depth > 0 else -1,
        min_child_samples=a.min_data_in_leaf, min_child_weight=a.min_sum_hessian,
        reg_lambda=a.lambda_l2, reg_alpha=0.0, min_split_gain=a.min_gain,
        colsample_bytree=a.feature_fraction, subsample=a.bagging_fraction,
        subsample_freq=1 if a.bagging_fraction < 1.0 else 0, max_bin=a.max_bins,
        n_jobs=a.threads, random_state=a.seed, verbose=-1,
    )

    def as_category(frame, cats):
        out = frame.copy()
        for c in cat:
            out[c] = pd.Categorical(frame[c], categories=cats[c])
        return out

    t0 = time.perf_counter()
    x_tr = X.iloc[train]
    cats = {c: sorted(x_tr[c].dropna().unique().tolist()) for c in cat}
    x_tr = as_category(x_tr, cats)
    model = lgb.LGBMClassifier(**params)
    model.fit(x_tr, y[train])  # `category` columns: native categorical splits
    fit_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    p = model.predict_proba(as_category(X.iloc[test], cats))[:, 1]
    predict_seconds = time.perf_counter() - t1
    auc = float(roc_auc_score(y[test], p))
    trees = int(model.booster_.num_trees())
    print(json.dumps({
        "fit_seconds": fit_seconds, "test_auc": auc, "predict_seconds": predict_seconds,
        "rows": {"train": int(len(train)), "test": int(len(test))},
        "origin": str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=origin))[:10],
        "horizon_days": horizon, "trees": trees,
        "settings": {k: v for k, v in params.items() if k != "verbose"},
        "inputs": {"numeric": len(num), "categorical": len(cat)},
        "lightgbm": lgb.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "python": sys.version.split()[0],
        "seconds": time.perf_counter() - t_all,
    }))


if __name__ == "__main__":
    main()
