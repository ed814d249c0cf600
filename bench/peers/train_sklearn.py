"""Training peers: scikit-learn LogisticRegression, DecisionTreeClassifier
and MLPClassifier with churnguard's settings, on churnguard's feature table
and split; XGBoost for reference.

    python train_sklearn.py --data f.parquet --family logistic|tree|neural|xgboost [--save model.joblib]

The split is churnguard's rolling-origin backtest (common.rolling_origins):
the model is fitted on the last origin's training window (every labelled row
whose snapshot + horizon <= the last origin snapshot) and tested on the
origin's rows, as churnguard's final model and its leaderboard's test
figures. XGBoost stops on a tenth of the window's customers, as churnguard's
gbdt does with early stopping on.

Prints one JSON line: fit seconds (preprocessing + model on the window, as
churnguard's leaderboard `fit (s)`: one fit, no calibration), test ROC-AUC,
row counts. With --save, the saved model also gets churnguard's calibration
(Platt on the earlier origins' out-of-time predictions, two more fits, not
counted in the fit seconds), for the batch-scoring comparison.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from common import grouped_holdout, horizon_days, preprocessor, roles, rolling_origins


def platt(p_val, y_val):
    z = np.log(np.clip(p_val, 1e-12, 1 - 1e-12) / np.clip(1 - p_val, 1e-12, 1)).reshape(-1, 1)
    return LogisticRegression(C=1e6).fit(z, y_val)


def fit_mlp(x, y, seed):
    """churnguard's neural settings: ReLU [128, 64], Adam lr 0.003, batch 256,
    at most 100 epochs, early stopping after 15 epochs without a lower
    validation log loss on 15% of the training rows, the best epoch kept.
    (No dropout in scikit-learn's MLP; no L2 either, as churnguard.)"""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_val = max(1, round(0.15 * len(y)))
    vi, ti = idx[:n_val], idx[n_val:]
    m = MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="adam",
                      learning_rate_init=0.003, batch_size=256, alpha=0.0, random_state=seed)
    best, best_state, since = np.inf, None, 0
    classes = np.array([0, 1])
    for _ in range(100):
        m.partial_fit(x[ti], y[ti], classes=classes)
        loss = log_loss(y[vi], m.predict_proba(x[vi])[:, 1], labels=classes)
        if loss < best - 1e-6:
            best, since = loss, 0
            best_state = ([c.copy() for c in m.coefs_], [b.copy() for b in m.intercepts_])
        else:
            since += 1
            if since >= 15:
                break
    m.coefs_, m.intercepts_ = best_state
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--family", required=True,
                    choices=["logistic", "tree", "neural", "xgboost"])
    ap.add_argument("--save", default=None)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    t_all = time.perf_counter()
    num, cat = roles(a.data + ".schema.json")
    df = pd.read_parquet(a.data)
    df = df[df["churned"].notna()].reset_index(drop=True)
    y = df["churned"].to_numpy().astype(np.int64)
    origins = rolling_origins(df, horizon_days(a.data + ".schema.json"))
    _, train, test = origins[-1]
    X = df[num + cat]

    def fit(rows):
        """Preprocessing and model on `rows` (XGBoost: less a tenth of the
        customers that stop its rounds)."""
        pre = clone(preprocessor(num, cat))
        if a.family == "xgboost":
            import xgboost as xgb

            rows, stop = grouped_holdout(df["customer_id"].to_numpy(), rows, 0.1, a.seed)
            x_tr = pre.fit_transform(X.iloc[rows])
            model = xgb.XGBClassifier(n_estimators=300, max_depth=6, learning_rate=0.1,
                                      tree_method="hist", n_jobs=2, early_stopping_rounds=30,
                                      eval_metric="logloss", random_state=a.seed)
            model.fit(x_tr, y[rows], eval_set=[(pre.transform(X.iloc[stop]), y[stop])],
                      verbose=False)
            return pre, model
        x_tr = pre.fit_transform(X.iloc[rows])
        if a.family == "logistic":
            model = LogisticRegression(C=1.0, max_iter=300, solver="lbfgs").fit(x_tr, y[rows])
        elif a.family == "tree":
            model = DecisionTreeClassifier(criterion="gini", max_depth=6, min_samples_leaf=50,
                                           min_samples_split=100, random_state=a.seed)
            model.fit(x_tr, y[rows])
        else:
            model = fit_mlp(x_tr.astype(np.float32), y[rows], a.seed)
        return pre, model

    def raw(pre, model, rows):
        x = pre.transform(X.iloc[rows])
        return model.predict_proba(x.astype(np.float32) if a.family == "neural" else x)[:, 1]

    t0 = time.perf_counter()
    pre, model = fit(train)
    fit_seconds = time.perf_counter() - t0

    x_te = pre.transform(X.iloc[test])
    if a.family == "neural":
        x_te = x_te.astype(np.float32)
    t1 = time.perf_counter()
    p_test = model.predict_proba(x_te)[:, 1]
    predict_ms_per_1k = (time.perf_counter() - t1) * 1e6 / max(len(test), 1)
    auc = roc_auc_score(y[test], p_test)
    calibration_rows = 0
    if a.save:
        import joblib

        # churnguard's calibrator: Platt on the earlier origins' out-of-time
        # predictions (each origin's model fitted on its own window).
        if len(origins) > 1:
            zs, ys = [], []
            for _, window, rows in origins[:-1]:
                zs.append(raw(*fit(window), rows))
                ys.append(y[rows])
            cal = platt(np.concatenate(zs), np.concatenate(ys))
            calibration_rows = int(sum(len(v) for v in ys))
        else:  # one origin: no out-of-time rows; in-sample Platt stands in
            cal = platt(raw(pre, model, train), y[train])
        joblib.dump({"pre": pre, "model": model, "calibrator": cal, "numeric": num,
                     "categorical": cat}, a.save)
    print(json.dumps({
        "family": a.family, "fit_seconds": fit_seconds, "test_auc": auc,
        "predict_ms_per_1k": predict_ms_per_1k,
        "rows": {"train": int(len(train)), "validation": calibration_rows,
                 "test": int(len(test))},
        "origin": str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=origins[-1][0]))[:10],
        "seconds": time.perf_counter() - t_all,
    }))


if __name__ == "__main__":
    main()
