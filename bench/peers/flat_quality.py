"""Flat-table quality peers: test ROC-AUC of XGBoost, LightGBM and CatBoost on
churnguard's stratified hash split of a flat customer table.

    python flat_quality.py --data telco_churn.csv --schema data/schemas/telco.toml \
        [--seed 42] [--test-fraction 0.2] [--families xgboost,lightgbm,catboost] \
        [--write-split split.csv]

What it measures. The product bar for flat tables is that churnguard's
champion reaches at least the test ROC-AUC of the best gradient-boosting
library a data scientist would reach for, trained on the same training rows
and scored on the same test rows. For each family this script fits on the
training rows only and reports, on the test rows: ROC-AUC (scikit-learn's
`roc_auc_score`), PR-AUC (`average_precision_score`), log loss, the seconds
the fit took and the settings used. The families:

  xgboost   a small grid tuned on the training rows only, then refit on all
            of them: for each max_depth {3, 5, 7} x learning_rate {0.05, 0.1},
            `xgb.cv` over 5 stratified folds picks the number of trees by early
            stopping (up to 1000; stop after 50 rounds without a better mean
            held-out ROC-AUC), and the pair with the best mean CV ROC-AUC wins,
            with its number of trees; other parameters are XGBoost's defaults,
            tree_method="hist", 2 threads. Categorical inputs are one-hot
            encoded (categories seen in the training rows; a missing or unseen
            value is all zeros), the standard input for XGBoost; numeric
            blanks stay NaN (XGBoost's own missing-value handling).
  lightgbm  library defaults (2 threads); categorical inputs as pandas
            `category` columns, LightGBM's native categorical handling.
  catboost  library defaults (2 threads); categorical inputs as cat_features.

Every family gets `--seed` as its random seed. Fit seconds count the model
fit only (and, for XGBoost, separately the grid search).

The split. Rows are read with the schema's columns only (the `ignore` list
and any unlisted column are dropped, so leaky columns never reach a model);
numeric cells are floats, blank cells missing; categorical cells are
trimmed text, blank cells missing; the label is 1 where the trimmed target
equals `target.positive`, rows with a blank target are dropped. The test
rows are then chosen by a rule that any language can reproduce from this
description, with no random generator involved, so churnguard's Rust side
draws exactly the same rows:

  stable_u64(salt, key): FNV-1a (64-bit) over the UTF-8 bytes of
      salt + "\\0" + key, then the SplitMix64 finaliser
      (h ^= h >> 30; h *= 0xbf58476d1ce4e5b9; h ^= h >> 27;
       h *= 0x94d049bb133111eb; h ^= h >> 31), all mod 2^64.
      stable_u64("", "") == 0x25fc6dd36ce04b20.
  salt = "split-{seed}"; key = the row's id (the schema's `id` column, as
      trimmed text; without an id column, the 1-based row number after
      dropping rows with a blank target).
  For each class (label 0, label 1) separately, sort its rows by
  (stable_u64(salt, key), row index) ascending (the index only breaks
  ties, which unique ids make all but impossible); the first
  k = floor(n_class * test_fraction + 0.5) are test rows, the rest training.

A hash of the id, unlike a seeded shuffle, depends neither on the row order
nor on any library's random generator, so churnguard, this script and any
other tool can be compared on exactly the same rows. `--write-split` writes `row,id,label,part` (row: 0-based
index after dropping rows with a blank target) to check another
implementation against.

Output: one JSON line on stdout (progress goes to stderr).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
import tomllib

# Before any library loads OpenMP (scikit-learn, XGBoost and LightGBM all do):
# idle OpenMP threads sleep instead of spinning. On a machine shared with
# other work, spinning makes a 2-thread fit 10-40x slower; on a quiet one
# passive waiting costs little. Set OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

MASK = 0xFFFFFFFFFFFFFFFF
FAMILIES = ("xgboost", "lightgbm", "catboost")
THREADS = 2
XGB_DEPTHS = (3, 5, 7)
XGB_RATES = (0.05, 0.1)
XGB_MAX_TREES = 1000
XGB_PATIENCE = 50
CV_FOLDS = 5
MISSING_CATEGORY = "(missing)"  # CatBoost needs text in cat_features


def log(msg):
    print(f"[flat_quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the split

def stable_u64(salt: str, key: str) -> int:
    """FNV-1a over salt + NUL + key (UTF-8), then the SplitMix64 finaliser."""
    h = 0xCBF29CE484222325
    for b in salt.encode() + b"\0" + key.encode():
        h ^= b
        h = (h * 0x100000001B3) & MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
    return h ^ (h >> 31)


assert stable_u64("", "") == 0x25FC6DD36CE04B20


def hash_split(keys, y, seed=42, test_fraction=0.2):
    """Stratified hash split. Returns (train, test) sorted row indices and,
    per class, the test rows in hash order."""
    salt = f"split-{seed}"
    test, ordered = [], {}
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        order = sorted(rows.tolist(), key=lambda i: (stable_u64(salt, keys[i]), i))
        k = math.floor(len(rows) * test_fraction + 0.5)
        ordered[label] = order[:k]
        test.extend(order[:k])
    test = np.sort(np.array(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test, ordered


# ---------------------------------------------------------------- the table

def load(data_path, schema_path):
    """The schema and the table: (schema, keys, X, y, dropped, missing counts).
    X has the numeric columns as float64 (NaN = blank) and the categorical ones
    as object text (None = blank)."""
    with open(schema_path, "rb") as f:
        schema = tomllib.load(f)
    cols = schema.get("columns", {})
    num, cat = list(cols.get("numeric", [])), list(cols.get("categorical", []))
    id_col = schema.get("id") or None
    target, positive = schema["target"]["column"], schema["target"]["positive"]
    wanted = ([id_col] if id_col else []) + [target] + num + cat
    raw = pd.read_csv(data_path, dtype=str, keep_default_na=False, na_filter=False)
    absent = [c for c in wanted if c not in raw.columns]
    if absent:
        sys.exit(f"flat_quality: {data_path} lacks the schema's columns {absent}")
    raw = raw[wanted]

    t = raw[target].str.strip()
    keep = (t != "").to_numpy()
    dropped = int((~keep).sum())
    raw = raw[keep].reset_index(drop=True)
    y = (t[keep] == positive).to_numpy().astype(np.int64)
    if y.min() == y.max():
        sys.exit(f"flat_quality: only one class in `{target}` (positive {positive!r})")

    if id_col:
        keys = raw[id_col].str.strip().tolist()
        if len(set(keys)) != len(keys):
            sys.exit(f"flat_quality: `{id_col}` is not unique")
    else:
        keys = [str(i + 1) for i in range(len(raw))]

    X = pd.DataFrame(index=raw.index)
    missing = {}
    for c in num:
        text = raw[c].str.strip()
        v = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = v.isna() & (text != "")
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            sys.exit(f"flat_quality: `{c}` row {i + 1}: {raw[c][i]!r} is not a number")
        X[c] = v.astype(np.float64)
    for c in cat:
        text = raw[c].str.strip()
        X[c] = text.where(text != "", None).astype(object)
    for c in num + cat:
        n = int(X[c].isna().sum())
        if n:
            missing[c] = n
    return schema, num, cat, keys, X, y, dropped, missing


# ---------------------------------------------------------------- encodings

def train_categories(X, cat, train):
    """Sorted distinct non-missing values of each categorical column on the
    training rows."""
    return {c: sorted(X[c].iloc[train].dropna().unique().tolist()) for c in cat}


def one_hot(X, num, cat, cats):
    """Numeric columns as they are, then one indicator per training category
    (missing or unseen values: all zeros). float32 matrix, column names."""
    parts, names = [X[num].to_numpy(np.float32)], list(num)
    for c in cat:
        codes = pd.Categorical(X[c], categories=cats[c]).codes
        m = np.zeros((len(X), len(cats[c])), dtype=np.float32)
        seen = codes >= 0
        m[np.flatnonzero(seen), codes[seen]] = 1.0
        parts.append(m)
        names += [f"{c}={v}" for v in cats[c]]
    return np.hstack(parts), names


def as_category(X, cat, cats):
    """Categorical columns as pandas `category` with the training categories
    (missing or unseen values: NaN)."""
    out = X.copy()
    for c in cat:
        out[c] = pd.Categorical(X[c], categories=cats[c])
    return out


# ---------------------------------------------------------------- families

def fit_xgboost(X, y, num, cat, train, test, seed):
    import xgboost as xgb

    cats = train_categories(X, cat, train)
    x_all, names = one_hot(X, num, cat, cats)
    x_tr, y_tr = x_all[train], y[train]
    params = {"objective": "binary:logistic", "tree_method": "hist", "nthread": THREADS,
              "seed": seed}

    t0 = time.perf_counter()
    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(x_tr, y_tr))
    dtrain = xgb.DMatrix(x_tr, label=y_tr, missing=np.nan)
    grid = []
    for depth in XGB_DEPTHS:
        for rate in XGB_RATES:
            # xgb.cv stops when the mean held-out ROC-AUC over the folds has
            # not improved for XGB_PATIENCE rounds; its last row is the best.
            hist = xgb.cv({**params, "max_depth": depth, "eta": rate}, dtrain,
                          num_boost_round=XGB_MAX_TREES, folds=folds, metrics="auc",
                          early_stopping_rounds=XGB_PATIENCE, seed=seed)
            grid.append({"max_depth": depth, "learning_rate": rate,
                         "n_estimators": len(hist),
                         "cv_roc_auc": float(hist["test-auc-mean"].iloc[-1])})
            log(f"xgboost cv depth={depth} lr={rate}: {len(hist)} trees, "
                f"ROC-AUC {grid[-1]['cv_roc_auc']:.4f}")
    cv_seconds = time.perf_counter() - t0
    # Best mean CV ROC-AUC; ties go to the earlier grid point.
    best = max(grid, key=lambda g: (g["cv_roc_auc"], -grid.index(g)))
    depth, rate, trees = best["max_depth"], best["learning_rate"], best["n_estimators"]

    t1 = time.perf_counter()
    m = xgb.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=rate,
                          tree_method="hist", n_jobs=THREADS, random_state=seed)
    m.fit(x_tr, y_tr)
    fit_seconds = time.perf_counter() - t1
    p = m.predict_proba(x_all[test])[:, 1]
    settings = {"max_depth": depth, "learning_rate": rate, "n_estimators": trees,
                "tree_method": "hist", "n_jobs": THREADS, "random_state": seed,
                "categorical": "one-hot", "inputs": len(names)}
    extra = {"cv_seconds": cv_seconds, "cv_roc_auc": best["cv_roc_auc"], "cv_grid": grid}
    return p, fit_seconds, settings, extra


def fit_lightgbm(X, y, num, cat, train, test, seed):
    import lightgbm as lgb

    cats = train_categories(X, cat, train)
    xc = as_category(X[num + cat], cat, cats)
    m = lgb.LGBMClassifier(n_jobs=THREADS, random_state=seed, verbose=-1)
    t0 = time.perf_counter()
    m.fit(xc.iloc[train], y[train])  # `category` columns: native categorical splits
    fit_seconds = time.perf_counter() - t0
    p = m.predict_proba(xc.iloc[test])[:, 1]
    settings = {"defaults": True, "n_jobs": THREADS, "random_state": seed,
                "categorical": "pandas category (native)",
                "n_estimators": m.n_estimators, "learning_rate": m.learning_rate,
                "num_leaves": m.num_leaves}
    return p, fit_seconds, settings, {}


def fit_catboost(X, y, num, cat, train, test, seed):
    from catboost import CatBoostClassifier, Pool

    xc = X[num + cat].copy()
    for c in cat:
        xc[c] = xc[c].fillna(MISSING_CATEGORY).astype(str)
    m = CatBoostClassifier(thread_count=THREADS, random_seed=seed, verbose=0,
                           allow_writing_files=False)
    t0 = time.perf_counter()
    m.fit(Pool(xc.iloc[train], y[train], cat_features=cat))
    fit_seconds = time.perf_counter() - t0
    p = m.predict_proba(Pool(xc.iloc[test], cat_features=cat))[:, 1]
    params = m.get_all_params()
    settings = {"defaults": True, "thread_count": THREADS, "random_seed": seed,
                "categorical": "cat_features",
                "iterations": params.get("iterations"),
                "learning_rate": params.get("learning_rate"), "depth": params.get("depth")}
    return p, fit_seconds, settings, {}


FIT = {"xgboost": fit_xgboost, "lightgbm": fit_lightgbm, "catboost": fit_catboost}


def versions(families):
    import sklearn

    out = {"python": sys.version.split()[0], "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
    for f in families:
        out[f] = __import__(f).__version__
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the flat table (CSV)")
    ap.add_argument("--schema", required=True, help="its churnguard flat schema (TOML)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--write-split", default=None, metavar="FILE",
                    help="write row,id,label,part of every row to FILE (CSV)")
    a = ap.parse_args()
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        ap.error(f"--families: choose from {','.join(FAMILIES)} (got {a.families!r})")
    if not 0.0 < a.test_fraction < 1.0:
        ap.error("--test-fraction must be between 0 and 1")
    t_all = time.perf_counter()

    schema, num, cat, keys, X, y, dropped, missing = load(a.data, a.schema)
    train, test, ordered = hash_split(keys, y, a.seed, a.test_fraction)
    name = schema.get("name", "")
    log(f"{name}: {len(y)} rows ({int(y.sum())} positive), train {len(train)}, "
        f"test {len(test)}; {len(num)} numeric, {len(cat)} categorical inputs")

    if a.write_split:
        part = np.full(len(y), "train", dtype=object)
        part[test] = "test"
        pd.DataFrame({"row": np.arange(len(y)), "id": keys, "label": y, "part": part}) \
            .to_csv(a.write_split, index=False)
        log(f"split written to {a.write_split}")

    results = {}
    for f in families:
        log(f"fitting {f}")
        p, fit_seconds, settings, extra = FIT[f](X, y, num, cat, train, test, a.seed)
        results[f] = {
            "test_roc_auc": float(roc_auc_score(y[test], p)),
            "test_pr_auc": float(average_precision_score(y[test], p)),
            "test_log_loss": float(log_loss(y[test], p, labels=[0, 1])),
            "fit_seconds": fit_seconds, "settings": settings, **extra,
        }
        log(f"{f}: test ROC-AUC {results[f]['test_roc_auc']:.4f}, "
            f"PR-AUC {results[f]['test_pr_auc']:.4f}, fit {fit_seconds:.1f} s")
    best = max(results, key=lambda f: results[f]["test_roc_auc"])

    with open(a.data, "rb") as fh:
        data_sha256 = hashlib.sha256(fh.read()).hexdigest()
    count = lambda idx, c: int((y[idx] == c).sum())  # noqa: E731
    print(json.dumps({
        "dataset": name, "data": a.data, "data_sha256": data_sha256, "schema": a.schema,
        "seed": a.seed, "test_fraction": a.test_fraction,
        "rows": {"total": int(len(y)), "dropped_missing_target": dropped,
                 "train": {"0": count(train, 0), "1": count(train, 1), "all": int(len(train))},
                 "test": {"0": count(test, 0), "1": count(test, 1), "all": int(len(test))}},
        "split": {"salt": f"split-{a.seed}", "key": schema.get("id") or "row number",
                  "first_test_keys": {str(c): [keys[i] for i in ordered[c][:10]]
                                      for c in (0, 1)}},
        "inputs": {"numeric": num, "categorical": cat, "missing": missing},
        "families": results,
        "best": {"family": best, "test_roc_auc": results[best]["test_roc_auc"]},
        "threads": THREADS, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "versions": versions(families),
        "seconds": time.perf_counter() - t_all,
    }))


if __name__ == "__main__":
    main()
