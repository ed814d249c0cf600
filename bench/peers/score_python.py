"""Batch scoring the Python way: a fitted scikit-learn pipeline's
predict_proba, Platt calibration, and churnguard's health index and band in
vectorised pandas/numpy.

    python score_python.py --model model.joblib --data rows.parquet --out scores.parquet

Prints one JSON line: rows and compute seconds (read to write, imports and
model loading excluded).
"""

import argparse
import json
import time

import joblib
import numpy as np
import pandas as pd

from common import health


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    m = joblib.load(a.model)
    t0 = time.perf_counter()
    df = pd.read_parquet(a.data)
    x = m["pre"].transform(df[m["numeric"] + m["categorical"]])
    raw = m["model"].predict_proba(x)[:, 1]
    z = np.log(np.clip(raw, 1e-12, 1 - 1e-12) / np.clip(1 - raw, 1e-12, 1)).reshape(-1, 1)
    p = m["calibrator"].predict_proba(z)[:, 1]
    score, band = health(df, p)
    out = pd.DataFrame({"customer_id": df["customer_id"], "churn_probability": p,
                        "health": score, "band": band})
    out.to_parquet(a.out, index=False)
    print(json.dumps({"rows": len(out), "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
