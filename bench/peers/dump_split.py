"""Dumps a churnguard feature table's last backtest origin (the rows
train_lightgbm.py fits and tests on) as column-major little-endian f64
files for bench/perpetual: xtr.bin, ytr.bin, xte.bin, yte.bin and meta.json
(columns, the categorical ones as level codes of the training rows).

    python dump_split.py --data f.parquet --out DIR
"""
import argparse
import json
import os

import numpy as np
import pandas as pd

from common import horizon_days, roles, rolling_origins

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--data", required=True, help="a churnguard feature table (Parquet)")
ap.add_argument("--out", required=True, help="output folder")
a = ap.parse_args()
f, out = a.data, a.out
os.makedirs(out, exist_ok=True)
schema = f + ".schema.json"
num, cat = roles(schema)
df = pd.read_parquet(f)
df = df[df["churned"].notna()].reset_index(drop=True)
y = df["churned"].to_numpy().astype(np.float64)
origin, train, test = rolling_origins(df, horizon_days(schema))[-1]
X = pd.DataFrame({c: df[c].astype(float) for c in num})
for c in cat:
    cats = sorted(df[c].iloc[train].dropna().unique().tolist())
    X[c] = pd.Categorical(df[c], categories=cats).codes.astype(float)
    X.loc[X[c] < 0, c] = np.nan
for name, rows in [("tr", train), ("te", test)]:
    np.asfortranarray(X.iloc[rows].to_numpy(dtype=np.float64)).T.ravel().astype("<f8").tofile(f"{out}/x{name}.bin")
    y[rows].astype("<f8").tofile(f"{out}/y{name}.bin")
json.dump({"cols": X.shape[1], "cat": list(range(len(num), len(num) + len(cat))), "train": int(len(train)), "test": int(len(test))}, open(f"{out}/meta.json", "w"))
print(X.shape, len(train), len(test))
